#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! False positives on benign API parameters, reporting only. The values are
//! our own: hand-written ones of the kinds a JSON API receives (names, emails,
//! addresses, product text, prose with SQL words, support tickets with code,
//! URLs, timestamps, ids, tokens, markdown), and combinations of them from a
//! seeded generator. Each value is sent as a JSON string field and as a query
//! parameter. Run with
//! `cargo test --release -p anomaly --test benign_api -- --nocapture`.
//! This set was written by the same people who wrote the detectors, so it is
//! an optimistic estimate; the independent evaluation is the real one.

use anomaly::config::Config;
use anomaly::engine::Engine;
use anomaly::request::Input;
use anomaly::score::Verdict;

const HAND: &[&str] = &[
    // names and people
    "O'Brien", "D'Angelo", "Renée Zellweger", "José Ñúñez", "Mary-Jane Watson", "Zoë O'Connor-Smith",
    "李小龙", "Müller, Jürgen", "Dr. Sarah O'Neil, PhD", "Jean-Luc Picard", "Ng", "Al", "Ed",
    "van der Berg", "Smith & Sons Ltd.", "Johnson & Johnson", "Procter & Gamble", "AT&T", "P&ID Engineering",
    // emails and handles
    "ann.o'reilly@example.com", "bob+newsletter@mail.example.org", "first.last@sub.domain.co.uk",
    "@jane_doe", "#summer-sale", "user_1234",
    // addresses
    "12 St. John's Road, London", "Apt. #4B, 221B Baker Street", "1600 Amphitheatre Pkwy, Mountain View, CA 94043",
    "Rue de l'Église 5, 1000 Bruxelles", "c/o Mike's Garage; Unit 7", "PO Box 123 / Suite 400",
    "Flat 3, 10 Queen's Gate; London SW7", "Hauptstraße 1 (Hinterhaus)",
    // product text
    "Select the best option for your home", "Choose from 3 sizes: S, M & L", "100% cotton; machine-washable at 30°C",
    "Buy 2, get 1 free! Use code SAVE20 at checkout.", "Waterproof (IPX7) & dust-resistant", "Works with iOS/Android",
    "The drop-down menu lets you select a date and time", "Union Jack flag, 90x150cm", "Drop table legs sold separately",
    "Delete my account, please", "Update: shipping delayed by 2 days", "Insert the card into the slot",
    "Order by 3pm for next-day delivery", "Group by colour or size in the filter panel", "Price: $19.99 (was $29.99)",
    "5 < 6 and 7 > 3 are both true", "Size >= 10 && weight <= 5kg", "Rating: 4.5/5 ★★★★☆",
    "It's 50% off -- today only!", "Best-seller #1 in Kitchen & Dining", "Ages 3+; not for children under 36 months",
    "Includes: cable, charger, manual", "a/b testing results: variant B wins", "Fits 13\"-15\" laptops",
    "Sleep mask with ear plugs (2 pairs)", "Ping-pong table, foldable", "Cat tree with scratching post",
    "Echo Dot (5th gen) smart speaker", "Find My iPhone", "The 'Classic' edition", "He said \"wow\" and left",
    "Set of 4 mugs; dishwasher safe", "Tom & Jerry DVD box set", "Salt & pepper | cat food | dog treats",
    "Rock 'n' roll greatest hits", "Who's who in 2024?", "either/or", "and/or", "yes; no; maybe",
    // prose with SQL-ish words
    "Please select the union representative from the list and update your profile",
    "I want to delete from my cart the items where the price is too high",
    "Where is my order? I ordered it from your site a week ago.",
    "Can you insert a note into my order: leave at the door",
    "My son dropped the table and it broke; can I get a refund?",
    "1 or 2 people", "Room for 1 or 2 adults", "Is it true or false that the sale ends today?",
    "You can't select more than 5 items, or can you?", "Either 'A' or 'B' is fine with me",
    "The value of x is 1=1 in the example, which is trivially true",
    "sleep (8 hours) is recommended", "Contains benchmark results from 2023",
    // support tickets with code
    "When I run `npm install` I get EACCES; what should I do?",
    "Error: Cannot read properties of undefined (reading 'map') at App.js:42",
    "My script does: for i in range(10): print(i)", "const x = arr.filter(a => a > 2);",
    "I used git checkout -b feature/login and now I can't push",
    "Stack trace: java.lang.NullPointerException at com.example.App.main(App.java:10)",
    "The API returns {\"error\": \"invalid_grant\"} when I refresh",
    "In Excel I typed =SUM(A1:A10) and it shows #VALUE!", "Regex ^[a-z0-9_-]{3,16}$ does not match my username",
    "printf(\"%d\\n\", x);", "if (a && b || !c) { return; }", "SELECT button doesn't work on Safari",
    "Steps: 1) open settings; 2) click 'Export'; 3) nothing happens",
    "Path C:\\Users\\me\\Documents\\report.pdf cannot be opened", "The file ~/Downloads/invoice.pdf is empty",
    "I see <b>bold</b> tags in the email instead of bold text", "Use **markdown** or _italics_ please",
    "Copy the link: https://example.com/reset?token=abc123&user=42",
    // urls
    "https://example.com/", "https://www.example.org/products/123?ref=email&utm_source=newsletter",
    "http://example.com:8080/api/v1/users?page=2", "https://cdn.example.net/img/a%20b.png",
    "https://maps.google.com/?q=51.5074,-0.1278", "mailto:support@example.com", "tel:+44-20-7946-0958",
    "https://github.com/org/repo/pull/123#discussion_r456", "https://en.wikipedia.org/wiki/Rock_%27n%27_roll",
    "ftp://ftp.example.com/pub/file.tar.gz", "https://api.example.com/v2/orders/550e8400-e29b-41d4-a716-446655440000",
    "https://172.217.16.142/", "https://8.8.8.8/dns-query", "//cdn.example.com/lib.js", "/images/logo.svg",
    // timestamps, numbers, ids
    "2024-03-15T14:30:00Z", "2024-03-15T14:30:00.123+02:00", "Fri, 15 Mar 2024 14:30:00 GMT", "15/03/2024", "03-15-2024",
    "14:30", "1710513000", "1710513000123", "-12.5", "1e-3", "0x1F", "+1 (555) 123-4567", "€1.234,56", "¥500",
    "550e8400-e29b-41d4-a716-446655440000", "01HQ3Z9XK5M8N7P6R4S2T0V1W3", "ORD-2024-000123", "SKU#A1-B2-C3",
    "ISBN 978-3-16-148410-0", "GB82 WEST 1234 5698 7654 32", "4111 1111 1111 1111", "v1.2.3-beta.4+build.5",
    "127.0.0.1 is localhost in my notes", "10.0.0.0/8", "fe80::1", "00:1A:2B:3C:4D:5E",
    // tokens and encodings
    "SGVsbG8sIFdvcmxkIQ==", "dGhpcyBpcyBhIHRlc3Qgb2YgYmFzZTY0IGVuY29kaW5nLg", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "ghp_16C7e42F292c6912E7710c838347Ae178B4a", "a1b2c3d4e5f6", "$2b$12$KIXQJ9s8bq3Oqv0L6J5rUe",
    "AKIAIOSFODNN7EXAMPLE", "-----BEGIN PUBLIC KEY-----", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    // markdown and rich text
    "# Heading\n\nSome *text* with a [link](https://example.com).", "- item 1\n- item 2\n- item 3",
    "> quoted reply\n\nThanks!", "| a | b |\n|---|---|\n| 1 | 2 |", "```\ncode block\n```", "1. first\n2. second",
    "Line one\r\nLine two", "Tabs\tbetween\twords", "emoji 🎉🎉 party", "«quotes» and „quotes“ and ‘quotes’",
    "Hello; how are you? Fine & you?", "What's up?! :-)", "<3", ":) ;) :P", "->", "=>", "...", "!!!", "???",
    "v2; find more in the docs", "Item#2; more info below", "Size 10; set of 4", "R&D; id card required",
    "3.5mm jack; echo cancellation", "USB-C; sleep mode", "5kg; cat litter", "1 or 2", "true or false",
    "Model X-100 | type: wireless", "Ref 42 & find attached", "Note: /etc/passwd is where Linux lists users",
    "a=1", "key=value", "x==y", "!important", "100% sure", "50%-off", "30% + 20%", "C++", "C#", "F#", ".NET",
    // Java and templates near the `java` rules
    "Hello ${firstName}, your order ${order.id} has shipped", "${price} USD", "{{user.name}}",
    "Runtime: 2h 15m", "The class loader could not find my plugin", "java.util.List<String> is not serializable",
    "Caused by: java.lang.IllegalStateException at org.example.Main.run(Main.java:7)",
    "org.apache.commons.lang3.StringUtils", "Spring Boot 3.2 with Java 21", "JNDI lookup failed in our legacy app",
    "rO0 is not a word", "ro0abc", "aced0005 is what I see in the hex dump",
    // PHP-adjacent
    "Our system(s) were down for 2 hours", "Please include(s) the receipt", "<?xml version=\"1.0\"?>",
    "richard.php@example.com", "I call exec() from Python", "cursor.execute(sql) fails",
    "Price: $5 (incl. VAT)", "$(document).ready(fn)", "ratio 3:2", "O: 8 items",
    "Upgraded PHP 8.2 and phpinfo shows the old version",
];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Ann", "Bob", "Chloé", "Dmitri", "Eoin", "Fatima", "Grace", "Hiro", "Iñigo", "Jo", "Kwame",
    "Liam", "Mei", "Noor", "Olu", "Priya",
];
const LAST: &[&str] = &[
    "O'Brien",
    "D'Souza",
    "Smith",
    "García",
    "Nguyen",
    "Müller",
    "O'Neill",
    "Kowalski",
    "Dubois",
    "Rossi",
    "Okafor",
    "Tanaka",
    "MacDonald",
    "Al-Sayed",
];
const STREET: &[&str] = &[
    "St. Mary's Road",
    "King's Lane",
    "Rue de l'Église",
    "Main St.",
    "Queen's Gate",
    "O'Connell Street",
    "Avenue des Champs-Élysées",
    "Baker St",
];
const NOUN: &[&str] = &[
    "table", "union", "order", "select", "group", "update", "drop", "sleep", "cat", "echo", "find",
    "set", "script", "alert", "file", "path", "exec", "shell",
];
const TEMPLATE: &[&str] = &[
    "Hi, I'd like to {v} the {n} I bought; is that possible?",
    "Can you {v} my {n} (order #{d})?",
    "The {n} and the {n2} don't match -- please {v} it.",
    "{N} & {N2}: best {n} for {d}% less",
    "Re: {n} {d}/{d2} -- \"{N}\" is out of stock",
    "My {n}'s {n2} broke after {d} days; I want to {v} it or get a refund.",
    "Use `{n} {n2}` in the settings page, then click \"{N}\".",
    "{N}? Or {n2}? I can't decide; which is better for ages {d}-{d2}?",
];
const VERB: &[&str] = &[
    "select", "update", "delete", "drop", "insert", "order", "return", "exchange", "cancel",
    "find", "set", "echo",
];

fn generated(n: usize) -> Vec<String> {
    let mut rng = Rng(0xbe91_9e42);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let d = (rng.next() % 100).to_string();
        let d2 = (rng.next() % 100).to_string();
        let v = match rng.next() % 7 {
            0 => format!("{} {}", rng.pick(FIRST), rng.pick(LAST)),
            1 => format!(
                "{}.{}@example.com",
                rng.pick(FIRST).to_lowercase(),
                rng.pick(LAST).to_lowercase().replace(' ', "")
            ),
            2 => format!(
                "{} {}, Apt {}; {}",
                d,
                rng.pick(STREET),
                d2,
                rng.pick(&["Dublin", "Paris", "London", "Köln"])
            ),
            3 => {
                let cap = |s: &str| {
                    let mut c = s.chars();
                    c.next()
                        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                };
                rng.pick(TEMPLATE)
                    .replace("{v}", rng.pick(VERB))
                    .replace("{n2}", rng.pick(NOUN))
                    .replace("{n}", rng.pick(NOUN))
                    .replace("{N2}", &cap(rng.pick(NOUN)))
                    .replace("{N}", &cap(rng.pick(NOUN)))
                    .replace("{d2}", &d2)
                    .replace("{d}", &d)
            }
            4 => format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                rng.next() as u32,
                rng.next() as u16,
                rng.next() % 4096,
                rng.next() % 4096,
                rng.next() % (1 << 48)
            ),
            5 => {
                let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
                let len = 20 + (rng.next() % 120) as usize;
                (0..len)
                    .map(|_| alphabet[(rng.next() % 64) as usize] as char)
                    .collect()
            }
            _ => format!(
                "https://shop.example.com/{}/{}?q={}+{}&page={}",
                rng.pick(NOUN),
                d,
                rng.pick(VERB),
                rng.pick(NOUN),
                d2
            ),
        };
        out.push(v);
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn benign_api_values() {
    let engine = Engine::new(Config::default()).expect("engine");
    let mut values: Vec<String> = HAND.iter().map(|s| s.to_string()).collect();
    values.extend(generated(5000));
    values.sort();
    values.dedup();
    let mut requests = 0u32;
    let mut detect = 0u32;
    let mut block = 0u32;
    let mut shown = 0;
    for v in &values {
        let body = serde_json::json!({ "field": v }).to_string();
        let json: [(&[u8], &[u8]); 1] = [(b"content-type", b"application/json")];
        let path = format!("/api/items?field={}", urlencode(v));
        let none: [(&[u8], &[u8]); 0] = [];
        for (p, h, b) in [
            ("/api/items", &json[..], Some(body.as_bytes())),
            (path.as_str(), &none[..], None),
        ] {
            let out = engine.evaluate(&Input {
                method: b"POST",
                path: p.as_bytes(),
                headers: h,
                body: b,
                body_truncated: false,
            });
            requests += 1;
            if out.verdict != Verdict::Pass {
                detect += 1;
                if shown < 30 {
                    shown += 1;
                    let rules: Vec<&str> = out.score.findings.iter().map(|f| f.rule).collect();
                    println!("flagged: {v:?} {rules:?}");
                }
            }
            if out.verdict == Verdict::Block {
                block += 1;
            }
        }
    }
    assert!(values.len() > 1000, "only {} values", values.len());
    println!(
        "\nbenign API values: {} distinct values, {} requests (JSON field and query parameter)\n\
         flagged (score >= detection threshold): {} ({:.2}%), blocked: {} ({:.2}%)",
        values.len(),
        requests,
        detect,
        100.0 * f64::from(detect) / f64::from(requests),
        block,
        100.0 * f64::from(block) / f64::from(requests)
    );
}
