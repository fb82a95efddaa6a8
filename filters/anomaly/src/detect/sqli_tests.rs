use super::*;

#[test]
fn no_flagged_fingerprint_starts_with_a_bareword_or_string_then_a_bareword() {
    // The premise of `prefix_clear`, against the library's own list.
    let all: Vec<&str> = flagged_fingerprints().collect();
    assert!(all.len() > 8000, "the list was not found: {}", all.len());
    assert!(
        all.iter().any(|f| f.starts_with("N1")),
        "list format changed"
    );
    let bad: Vec<&&str> = all
        .iter()
        .filter(|f| f.starts_with("NN") || f.starts_with("SN"))
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn fast_keyword_lookup_agrees_with_libinjection() {
    let k = keywords();
    let mut words: Vec<String> = SQL_KEYWORDS
        .iter()
        .filter(|e| e.token_type != b'F')
        .flat_map(|e| [e.word.to_string(), e.word.to_ascii_lowercase()])
        .collect();
    words.extend(
        [
            "Gift", "wrap", "best", "sélect", "x", "", "unionall", "GROUP BY", "a b c",
        ]
        .map(String::from),
    );
    words.push("A".repeat(70));
    for w in &words {
        assert_eq!(k.lookup(w), sqli_data::lookup_word(w), "{w}");
    }
}

#[test]
fn prose_starting_with_two_plain_words_is_clear() {
    for v in [
        "Gift wrap, and drop the price tag from the box.",
        "Thanks Ann, it's a fine day; select the best one (or two) from the list.",
        "Ann said \"please\" leave it, or not",
    ] {
        assert!(prefix_clear(v.as_bytes()), "{v}");
    }
}

#[test]
fn injections_and_unsure_shapes_are_not_clear() {
    not_shaped(
        prefix_clear,
        &[
            "1' or '1'='1",
            "admin' --",
            "x' union select password from users --",
            "The user(s) list",
            "It's a fine day",
            "Please select the best window",
            "group by 1",
            "at time zone 'utc'",
            "ann' or 1=1 --",
            "hello world' and sleep(5) #",
            "",
            "word",
        ],
    );
}

#[test]
fn no_keyword_phrase_ends_in_another_keyword() {
    // `context_clear` checks that a bareword second token does not merge
    // with the third; a phrase `B C D` whose tail `C D` is itself a keyword
    // could still absorb it after `C D` merged: its head must be known.
    let k = keywords();
    let mut phrases = 0;
    for e in SQL_KEYWORDS.iter().filter(|e| e.token_type != b'F') {
        let words: Vec<&str> = e.word.split(' ').collect();
        if words.len() < 3
            || k.lookup(e.word) == TokenType::Bareword
            || k.lookup(words[0]) != TokenType::Bareword
        {
            continue;
        }
        phrases += 1;
        for start in 1..words.len() - 1 {
            let tail = words[start..].join(" ");
            if k.lookup(&tail) != TokenType::Bareword {
                let head = words[..start].join(" ");
                assert!(
                    start == 1 && k.absorbing.contains_key(words[0]),
                    "{}: {head} + {tail}",
                    e.word
                );
            }
        }
    }
    assert!(phrases > 0, "{phrases}");
}

#[test]
fn per_context_verdict_matches_libinjection_on_known_values() {
    for v in [
        "1' or '1'='1",
        "admin' --",
        "Ann O'Brien",
        "1 union select 1,2 -- ",
        "x\" or 1=1 #",
        "Please select the best window; leave it",
        "Order #4411 arrived",
        "1' /*!50000union*/ select 1 #",
    ] {
        assert_eq!(
            libinjection_flags(v.as_bytes()),
            libinjectionrs::detect_sqli(v.as_bytes()).is_injection(),
            "{v}"
        );
    }
}

fn rules(v: &str) -> Vec<(&'static str, crate::score::Severity)> {
    let mut hits = Vec::new();
    detect(v.as_bytes(), &mut hits);
    hits.iter().map(|h| (h.rule, h.severity)).collect()
}

fn not_shaped(shape: fn(&[u8]) -> bool, values: &[&str]) {
    for v in values {
        assert!(!shape(v.as_bytes()), "{v}");
    }
}

/// Each value has the shape, and libinjection's finding on it only warns.
fn only_warns(shape: fn(&[u8]) -> bool, values: &[&str]) {
    for v in values {
        assert!(shape(v.as_bytes()), "{v}");
        assert_eq!(
            rules(v),
            [("sqli.libinjection", crate::score::Severity::Warning)],
            "{v}"
        );
    }
}

#[test]
fn prose_with_sql_words_only_warns() {
    use crate::score::Severity::Critical;
    only_warns(
        prose_shaped,
        &[
            "Please drop your join by Friday for me",
            "blue from 1 or 2 more table",
        ],
    );
    // A number, a keyword or SQL punctuation first is no sentence.
    not_shaped(
        prose_shaped,
        &[
            "1 union select null",
            "or 1=1",
            "x' or 1=1 --",
            "select password from users",
            "name -- comment",
        ],
    );
    assert!(rules("1 union select null").contains(&("sqli.libinjection", Critical)));
    // What does harm unquoted is still critical through the syntax rules.
    let r = rules("name union select password from users");
    assert!(r.contains(&("sqli.syntax", Critical)), "{r:?}");
}

fn flagged_by_syntax(values: &[&str]) {
    for v in values {
        assert!(syntax(v.as_bytes()).is_some(), "{v}");
    }
}

fn clean_to_syntax(values: &[&str]) {
    for v in values {
        assert_eq!(syntax(v.as_bytes()), None, "{v}");
    }
}

#[test]
fn a_value_opening_with_a_condition_tail_is_syntax() {
    // Values are normalised (lower case, blanks) before the rules run.
    flagged_by_syntax(&[
        " and 2>1/*",
        "\tand\t2>1--",
        "  xor  'x'<>'y'",
        " or 3 between 1 and 5-- -",
        " and not false#",
        " and not false;--",
        "procedure analyse()",
        "waitfor delay '0:0:5'",
    ]);
    clean_to_syntax(&[
        "and delete",
        "or sleep in",
        "and 3 more",
        "or maybe not",
        "and not false",
        "div[data-value=\"test\"]",
        "not = equal",
        "procedure manual",
        "and select the",
    ]);
}

#[test]
fn search_queries_and_copy_numbered_file_names_only_warn() {
    use crate::score::Severity::Critical;
    // Values are normalised (lower case) before the rules run.
    only_warns(
        search_shaped,
        &[
            "backup and (config or copy) not sort",
            "draft and (invoice or report) not notes",
            "(red or blue) and not green",
            "photos and (summary or date) not home",
        ],
    );
    only_warns(
        copy_numbered_file,
        &[
            "logo set (2).jpg",
            "draft sleep (5).tar.gz",
            "backup time (6).jpg",
        ],
    );
    // A number, literal, comparison, call, statement word, quote or comment
    // makes it SQL again.
    not_shaped(
        search_shaped,
        &[
            "x and (1 or 2)",
            "x or (true)",
            "x and (y or z) not null",
            "x or (select password)",
            "x and sleep(5)",
            "x and (y = z)",
            "x' and (y or z)",
            "x and (y or z)--",
            "x or (y or z",
            "x union (y)",
            "x and (y or z) not set",
            "x or id in (id)",
            "x or (id in (id))",
            "x or match (a) against (b)",
            "x or user()",
            "x or database()",
            "x or password(x)",
            "x or char (49)",
        ],
    );
    not_shaped(
        copy_numbered_file,
        &[
            "x and sleep (5).jpg",
            "x or y (1).png",
            "a union select (1).jpg",
            "x--y (1).jpg",
            "x; drop (1).jpg",
            "x (1).jpg--",
            "x (1)",
            "x (1234).jpg",
            "x (1).toolong",
            "x (1).a.b.c",
        ],
    );
    assert!(rules("1 or sleep(5)").contains(&("sqli.libinjection", Critical)));
    assert!(rules("x or (select password)")
        .iter()
        .any(|r| r.1 == Critical));
}

#[test]
fn a_value_that_is_a_clause_tail_is_syntax() {
    flagged_by_syntax(&[
        " group by 1#",
        "x order by 5--",
        "\norder\nby\n5--",
        " limit 1,1-- -",
        " limit 1,1;--",
        " having 1=1/*",
        "having 1=1",
        "42 having 1=1--",
        "abc procedure analyse()",
        "-1  procedure  analyse()--  -",
        "; update users set role='admin'",
        "; update users set admin=true",
        "; update users set pw=(select pw from admins)",
    ]);
    // Prose says these without cutting a query.
    clean_to_syntax(&[
        "please order by 5",
        "order by 5",
        "credit limit 5,000",
        "speed limit 30",
        "group by 2 tomorrow#",
        "we are having 2 = 3 more",
        "order by friday--",
        "the having 1=1",
        "fixed it; update the set list = done",
        "order by 2 #tbt",
        "group by 2 #teamwork",
        "limit 10,20 #promo",
        "group by 3 -- see notes",
        "order by 5pm -- thanks",
    ]);
}
