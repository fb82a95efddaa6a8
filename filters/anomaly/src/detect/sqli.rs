//! SQL injection, two rules over the normalised value:
//! - `sqli.libinjection`: libinjection's tokenizer and fingerprint set (crate
//!   `libinjectionrs`), which tokenizes the value as SQL in three quote
//!   contexts and flags token sequences that only injections form;
//! - `sqli.syntax`: our own token rules for shapes libinjection's fingerprints
//!   miss (measured on the CRS corpus): a quote or number breaking out into a
//!   boolean or clause keyword, a value opening with a condition's tail
//!   (` AND 2>1--`), `UNION SELECT`, stacked statements,
//!   `SELECT ... FROM` lists, SQL-only functions and catalogue names, and
//!   MongoDB query operators in parameter names or JSON keys.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::sync::OnceLock;

use libinjectionrs::sqli::sqli_data::{self, SQL_KEYWORDS};
use libinjectionrs::sqli::{SqliTokenizer, Token, TokenType};
use libinjectionrs::{SqliFlags, SqliState};

use super::words::WordSet;
use super::{contains, find};
use crate::score::{Hit, Severity};

pub fn detect(value: &[u8], hits: &mut Vec<Hit>) {
    // Too short to hold an injection; also spares the tokenizers most values.
    if value.len() < 2 {
        return;
    }
    // Two gates, each checked against libinjection in tests/robustness.rs.
    if !single_plain_token(value) && libinjection_may_flag(value) && libinjection_flags(value) {
        if !(prose_shaped(value) || search_shaped(value) || copy_numbered_file(value)) {
            hits.push(hit("sqli.libinjection", 0));
            return;
        }
        // English with SQL words in it (`Please drop your join by Friday`),
        // a boolean search over plain words, or a file name such as
        // `logo set (2).png` fingerprints like SQL. None can leave a quoted
        // string, and in an unquoted slot the shapes that do harm (`union
        // select`, stacked statements) are `sqli.syntax`'s, below; so
        // libinjection alone only warns.
        hits.push(Hit {
            rule: "sqli.libinjection",
            severity: Severity::Warning,
            offset: 0,
        });
    }
    if let Some(offset) = syntax(value) {
        hits.push(hit("sqli.syntax", offset));
    } else if let Some(offset) = nosql_operator(value) {
        hits.push(hit("sqli.nosql-operator", offset));
    }
}

/// Letters, digits, spaces and sentence punctuation only (no quote,
/// parenthesis, operator, comment or variable sigil), starting with a word
/// libinjection reads as a plain bareword (not a number, not a keyword).
pub fn prose_shaped(value: &[u8]) -> bool {
    let sentence = value.iter().all(|&b| {
        b.is_ascii_alphanumeric() || matches!(b, b' ' | b',' | b'.' | b'!' | b'?' | b':' | b'-')
    }) && !contains(value, b"--");
    if !sentence {
        return false;
    }
    let first = value
        .split(|&b| !b.is_ascii_alphanumeric())
        .find(|w| !w.is_empty())
        .unwrap_or_default();
    first.first().is_some_and(u8::is_ascii_alphabetic)
        && std::str::from_utf8(first).is_ok_and(|w| keywords().lookup(w) == TokenType::Bareword)
}

/// A boolean search over plain words (`backup and (copy or logo) not
/// draft`, as search boxes take them): words libinjection reads as plain
/// names ([`plain_name`]), `and`, `or`, `not`, blanks and balanced
/// parentheses. No number, literal, operator, comment, keyword or called
/// name: read as SQL it only names columns, so it can neither compare nor
/// call nor select anything.
pub fn search_shaped(value: &[u8]) -> bool {
    let mut depth = 0usize;
    let mut prev: &[u8] = b"";
    let mut i = 0;
    while let Some(&b) = value.get(i) {
        match b {
            b' ' => i += 1,
            b'(' => {
                depth += 1;
                prev = b"";
                i += 1;
            }
            b')' => {
                let Some(d) = depth.checked_sub(1) else {
                    return false;
                };
                depth = d;
                prev = b"";
                i += 1;
            }
            _ if b.is_ascii_alphabetic() || b == b'_' => {
                let end = value[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(value.len(), |n| i + n);
                let word = &value[i..end];
                let next = value[end..].iter().find(|&&c| c != b' ');
                if !(matches!(word, b"and" | b"or" | b"not") || plain_name(word, next))
                    || merges_with(prev, word)
                {
                    return false;
                }
                prev = word;
                i = end;
            }
            _ => return false,
        }
    }
    depth == 0
}

/// A word libinjection reads as a bareword, a type name (`int`) or a
/// function name (`date`), with no `(` after it: any name called is a
/// function in SQL (`char(49)`, `user()`). Keywords (`in`, `match`:
/// `x or id in (id)` compares), statement words (`select`, `set`), `union`,
/// literals (`true`, `null`) and T-SQL words are not plain.
fn plain_name(word: &[u8], next: Option<&u8>) -> bool {
    next != Some(&b'(')
        && matches!(
            std::str::from_utf8(word).map(|w| keywords().lookup(w)),
            Ok(TokenType::Bareword | TokenType::SqlType | TokenType::Function)
        )
}

/// Whether two adjacent words fold into one of libinjection's multi-word
/// keywords (`order by`).
fn merges_with(prev: &[u8], word: &[u8]) -> bool {
    !prev.is_empty() && keywords().phrase(prev, word)
}

/// A file name with a copy number, as file managers and browsers write
/// them (`logo set (2).png`, `draft sleep (5).tar.gz`): words, a blank,
/// `(digits)` and one or two extensions, nothing else. The `.ext` after
/// the parenthesis makes any SQL reading a syntax error (and the shape has
/// no `;` or comment to cut it off); still, no word may join conditions
/// (`and`, `or`) or queries (`union`).
pub fn copy_numbered_file(value: &[u8]) -> bool {
    let Some(open) = value.iter().rposition(|&b| b == b'(') else {
        return false;
    };
    let (names, tail) = value.split_at(open);
    let Some(close) = tail.iter().position(|&b| b == b')') else {
        return false;
    };
    let (digits, ext) = (&tail[1..close], &tail[close + 1..]);
    let ext_ok = ext.first() == Some(&b'.')
        && ext[1..].split(|&b| b == b'.').enumerate().all(|(i, e)| {
            i < 2 && (1..=5).contains(&e.len()) && e.iter().all(u8::is_ascii_alphanumeric)
        });
    let Some(names) = names.strip_suffix(b" ") else {
        return false;
    };
    ext_ok
        && (1..=3).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && names.first().is_some_and(u8::is_ascii_alphabetic)
        && names.split(|&b| b == b' ').all(|w| {
            !w.is_empty()
                && w[0].is_ascii_alphanumeric()
                && w.iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                && !contains(w, b"--")
                && std::str::from_utf8(w).is_ok_and(|w| {
                    !matches!(
                        keywords().lookup(w),
                        TokenType::LogicOperator | TokenType::Union
                    )
                })
        })
}

/// Bytes that give libinjection a token other than a word, a number, an
/// operator or a comma: quotes (strings), `(` `)`, `&` `|` (logic), `@` `$`
/// (variables, `$$` strings), `#` (comment), `{` `}` (ODBC), `\\` (`\N`).
/// (`?` and `]` are unknown tokens and `[x]` a plain word.) Every fingerprint
/// in its list made only of word, number, operator and comma tokens also
/// holds a keyword, a SQL type name, `AND`/`OR`, `UNION`, `SELECT`-class or
/// `GROUP BY`-class words (checked against its fingerprint list), so a value
/// with none of these bytes and none of [`TRIGGER_WORDS`] cannot be flagged.
const fn libinjection_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let special = b"'\"`()&|@$#{}\\";
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
}
static LIBINJECTION_BYTES: [bool; 256] = libinjection_bytes();

/// Every word of every libinjection keyword whose token type can complete a
/// fingerprint from words, numbers and operators (keyword, SQL type, logic
/// operator, `UNION`, expression, group and T-SQL classes), lowercase and
/// sorted; taken from the keyword table of libinjectionrs 0.1.1.
const TRIGGER_WORDS: &[&[u8]] = &[
    b"_armscii8",
    b"_ascii",
    b"_big5",
    b"_binary",
    b"_cp1250",
    b"_cp1251",
    b"_cp1257",
    b"_cp850",
    b"_cp852",
    b"_cp866",
    b"_cp932",
    b"_dec8",
    b"_eucjpms",
    b"_euckr",
    b"_gb2312",
    b"_gbk",
    b"_geostd8",
    b"_greek",
    b"_hebrew",
    b"_hp8",
    b"_keybcs2",
    b"_koi8r",
    b"_koi8u",
    b"_latin1",
    b"_latin2",
    b"_latin5",
    b"_latin7",
    b"_macce",
    b"_macroman",
    b"_sjis",
    b"_swe7",
    b"_tis620",
    b"_ujis",
    b"_usc2",
    b"_utf8",
    b"abort",
    b"accessible",
    b"against",
    b"all",
    b"all_users",
    b"alter",
    b"analyze",
    b"and",
    b"anyarray",
    b"anyelement",
    b"anynonarry",
    b"as",
    b"asc",
    b"asensitive",
    b"at",
    b"autoincrement",
    b"before",
    b"begin",
    b"bigint",
    b"bigserial",
    b"binary",
    b"blob",
    b"boolean",
    b"both",
    b"by",
    b"bytea",
    b"call",
    b"cascade",
    b"case",
    b"change",
    b"character",
    b"column",
    b"condition",
    b"constraint",
    b"continue",
    b"count_big",
    b"create",
    b"cross",
    b"cstring",
    b"current",
    b"current_date",
    b"current_path",
    b"current_server",
    b"current_time",
    b"current_timestamp",
    b"current_timezone",
    b"current_user",
    b"cursor",
    b"data",
    b"databases",
    b"date",
    b"day_hour",
    b"day_microsecond",
    b"day_minute",
    b"day_second",
    b"dec",
    b"decimal",
    b"declare",
    b"default",
    b"degree",
    b"delay",
    b"delayed",
    b"delete",
    b"desc",
    b"describe",
    b"deterministic",
    b"distinct",
    b"distinctrow",
    b"domain",
    b"double",
    b"drop",
    b"dumpfile",
    b"each",
    b"else",
    b"elseif",
    b"enclosed",
    b"escaped",
    b"except",
    b"exec",
    b"execute",
    b"exit",
    b"explain",
    b"fetch",
    b"float",
    b"float4",
    b"float8",
    b"for",
    b"force",
    b"foreign",
    b"from",
    b"full",
    b"fulltext",
    b"function",
    b"go",
    b"goto",
    b"grant",
    b"group",
    b"handler",
    b"having",
    b"high_priority",
    b"hour_microsecond",
    b"hour_minute",
    b"hour_second",
    b"ignore",
    b"in",
    b"index",
    b"infile",
    b"inner",
    b"inout",
    b"insensitive",
    b"insert",
    b"int",
    b"int1",
    b"int2",
    b"int3",
    b"int4",
    b"int8",
    b"integer",
    b"intersect",
    b"interval",
    b"into",
    b"iterate",
    b"join",
    b"keys",
    b"kill",
    b"leading",
    b"leave",
    b"left",
    b"limit",
    b"linear",
    b"lines",
    b"load",
    b"localtime",
    b"localtimestamp",
    b"lock",
    b"locked",
    b"login",
    b"longblob",
    b"longtext",
    b"loop",
    b"low_priority",
    b"master_bind",
    b"master_ssl_verify_server_cert",
    b"match",
    b"maxvalue",
    b"mediumblob",
    b"mediumint",
    b"mediumtext",
    b"merge",
    b"middleint",
    b"minute_microsecond",
    b"minute_second",
    b"mode",
    b"modifies",
    b"money",
    b"natural",
    b"next",
    b"no_write_to_binlog",
    b"not",
    b"notnull",
    b"nowait",
    b"null",
    b"numeric",
    b"of",
    b"offset",
    b"oid",
    b"one_shot",
    b"open",
    b"optimize",
    b"option",
    b"optionally",
    b"or",
    b"order",
    b"outer",
    b"outfile",
    b"own3d",
    b"partition",
    b"path",
    b"precision",
    b"previous",
    b"primary",
    b"print",
    b"procedure",
    b"purge",
    b"raiseerror",
    b"range",
    b"read",
    b"read_write",
    b"reads",
    b"real",
    b"receive",
    b"references",
    b"regclass",
    b"regconfig",
    b"regdictionary",
    b"regoper",
    b"regoperator",
    b"regproc",
    b"regprocedure",
    b"regtype",
    b"release",
    b"rename",
    b"repeat",
    b"replace",
    b"require",
    b"resignal",
    b"restrict",
    b"return",
    b"revoke",
    b"right",
    b"rollup",
    b"schema",
    b"schemas",
    b"second_microsecond",
    b"select",
    b"sensitive",
    b"separator",
    b"serial",
    b"serial2",
    b"serial4",
    b"serial8",
    b"server",
    b"set",
    b"share",
    b"shutdown",
    b"signal",
    b"similar",
    b"skip",
    b"smallint",
    b"smallserial",
    b"spatial",
    b"specific",
    b"sql",
    b"sql_big_result",
    b"sql_buffer_result",
    b"sql_cache",
    b"sql_calc_found_rows",
    b"sql_no_cache",
    b"sql_small_result",
    b"sqlexception",
    b"sqlstate",
    b"sqlwarning",
    b"ssl",
    b"starting",
    b"straight_join",
    b"syscolumns",
    b"sysobjects",
    b"sysusers",
    b"table",
    b"tables",
    b"terminated",
    b"text",
    b"then",
    b"time",
    b"timestamp",
    b"timezone",
    b"tinyblob",
    b"tinyint",
    b"tinytext",
    b"top",
    b"trigger",
    b"try",
    b"undo",
    b"uni_on",
    b"union",
    b"unknown",
    b"unlock",
    b"unsigned",
    b"update",
    b"usage",
    b"use",
    b"utc_date",
    b"utc_time",
    b"utc_timestamp",
    b"value",
    b"values",
    b"varbinary",
    b"varchar",
    b"varcharacter",
    b"varying",
    b"void",
    b"wait",
    b"waitfor",
    b"when",
    b"where",
    b"while",
    b"with",
    b"write",
    b"xml",
    b"xor",
    b"xp_execresultset",
    b"year_month",
    b"zerofill",
    b"zone",
];

/// True unless the value provably cannot be flagged by libinjection's SQL
/// detector: no byte of [`LIBINJECTION_BYTES`], no `--` or `/*` comment,
/// and no word (nor any tail of a word after a digit, since a number can end
/// inside a run such as `0xunion`) in [`TRIGGER_WORDS`]. Most API values pass
/// this in one scan and skip libinjection (several µs each).
/// `tests/robustness.rs` checks it against libinjection itself.
pub fn libinjection_may_flag(value: &[u8]) -> bool {
    if value.iter().any(|&b| LIBINJECTION_BYTES[usize::from(b)])
        || contains(value, b"--")
        || contains(value, b"/*")
    {
        return true;
    }
    // A number can end inside a run of word bytes (`1union`, `0xunion`,
    // `11.eunion`), so after a digit every tail is a possible word too.
    value
        .split(|b| !(b.is_ascii_alphanumeric() || *b == b'_' || *b == b'.'))
        .any(|run| {
            if run.split(|&b| b == b'.').any(trigger_word) {
                return true;
            }
            let Some(first_digit) = run.iter().position(u8::is_ascii_digit) else {
                return false;
            };
            (first_digit + 1..run.len()).any(|i| {
                let tail = &run[i..];
                let word = tail.split(|&b| b == b'.').next().unwrap_or_default();
                (run[i].is_ascii_alphabetic() || run[i] == b'_') && trigger_word(word)
            })
        })
}

/// Bit `n` of entry `b`: some trigger word of `n` bytes starts with `b`
/// (either case). Rejects almost every word before the hash lookup.
const fn trigger_shapes() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < TRIGGER_WORDS.len() {
        let w = TRIGGER_WORDS[i];
        let bit = 1u32 << w.len();
        t[w[0] as usize] |= bit;
        t[w[0].to_ascii_uppercase() as usize] |= bit;
        i += 1;
    }
    t
}
static TRIGGER_SHAPES: [u32; 256] = trigger_shapes();

static TRIGGER_SET: WordSet<1024> = WordSet::new(TRIGGER_WORDS);

fn trigger_word(w: &[u8]) -> bool {
    let Some(&first) = w.first() else {
        return false;
    };
    if w.len() >= 32 || TRIGGER_SHAPES[usize::from(first)] & (1u32 << w.len()) == 0 {
        return false;
    }
    // libinjection matches keywords in any case.
    TRIGGER_SET.contains(w)
}

/// For the unit test that the table stays sorted (for review) and lowercase
/// (the hash set's keys).
pub fn trigger_words() -> &'static [&'static [u8]] {
    TRIGGER_WORDS
}

/// A plain identifier or number: letters, digits and `_` only (`desc`,
/// `123`, `user_42`), with no digit running into a letter (`1union` is two
/// SQL tokens; `/` is an operator, so paths do not qualify). Such a
/// value cannot form an injection, so libinjection (about 4 µs per short
/// value natively) is skipped; `tests/robustness.rs` checks on random and
/// mutated values that libinjection never flags one.
pub fn single_plain_token(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'_')
        && !value
            .windows(2)
            .any(|w| w[0].is_ascii_digit() && w[1].is_ascii_alphabetic())
}

// libinjection's contexts: where the value starts (as is, after an assumed
// `'` or `"`) and the SQL dialect.
fn none_ansi() -> SqliFlags {
    SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_ANSI
}
fn none_mysql() -> SqliFlags {
    SqliFlags::FLAG_QUOTE_NONE | SqliFlags::FLAG_SQL_MYSQL
}
fn single_ansi() -> SqliFlags {
    SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_ANSI
}
fn single_mysql() -> SqliFlags {
    SqliFlags::FLAG_QUOTE_SINGLE | SqliFlags::FLAG_SQL_MYSQL
}
fn double_mysql() -> SqliFlags {
    SqliFlags::FLAG_QUOTE_DOUBLE | SqliFlags::FLAG_SQL_MYSQL
}

/// libinjection's SQL verdict (its `detect`: the value as is, in ANSI and,
/// when comments make it reparse, MySQL; after an assumed `'` when the
/// value holds one, likewise; after an assumed `"` in MySQL when it holds
/// one), except that a context whose first tokens prove it clear
/// ([`context_clear`]) is not folded. `tests/robustness.rs` checks that the
/// verdict equals the library's on generated values.
pub fn libinjection_flags(value: &[u8]) -> bool {
    let run = |flags: SqliFlags| {
        let mut state = SqliState::new(value, flags);
        let hit = state.is_sqli();
        (
            hit,
            state.stats_comment_ddx != 0 || state.stats_comment_hash != 0,
        )
    };
    // The dialects tokenize alike except `#` and `--` (comments in one,
    // operators in the other), so without them one clear-check serves both.
    let dialects_agree = !value.contains(&b'#') && !contains(value, b"--");
    let pair = |ansi: SqliFlags, mysql: SqliFlags| {
        let ansi_clear = context_clear(value, ansi);
        let mysql_clear = || {
            if dialects_agree {
                ansi_clear
            } else {
                context_clear(value, mysql)
            }
        };
        if ansi_clear && mysql_clear() {
            return false;
        }
        // The ANSI pass also says whether libinjection would reparse.
        let (hit, reparse) = run(ansi);
        hit || (reparse && !mysql_clear() && run(mysql).0)
    };
    if value.is_empty() {
        return false;
    }
    pair(none_ansi(), none_mysql())
        || (value.contains(&b'\'') && pair(single_ansi(), single_mysql()))
        || (value.contains(&b'"') && !context_clear(value, double_mysql()) && run(double_mysql()).0)
}

/// True when libinjection provably cannot flag the value in the context
/// `flags`: its fingerprint starts with a bareword or string followed by a
/// bareword (`nn`, `sn`), and no fingerprint in its list starts so (checked
/// by a unit test against the list). Free text often starts that way
/// (`Gift wrap, and drop the tag`, `Ann O'Brien`), and this reads three
/// tokens instead of folding the whole value.
///
/// Nothing may make the fingerprint `X` (the value holds no `/*` or `{`),
/// and the two tokens must also survive folding: neither may merge with the
/// next into one of libinjection's multi-word keywords (`GROUP BY`,
/// `NATURAL FULL OUTER JOIN`), and neither may be a name libinjection
/// makes a function before a `(` (`user`, `password`). `tests/robustness.rs` checks the gate against
/// libinjection itself.
pub fn context_clear(input: &[u8], flags: SqliFlags) -> bool {
    // An "evil" token anywhere in the first five (a `/*` comment holding
    // `/*` or `!`, an empty name after `{`) turns the whole fingerprint
    // into `X`, which is flagged.
    if contains(input, b"/*") || input.contains(&b'{') {
        return false;
    }
    let words = keywords();
    let lookup = |w: &str| words.lookup(w);
    let mut t = SqliTokenizer::new(input, flags).with_lookup_fn(&lookup);
    let (Some(a), Some(b)) = (t.next_token(), t.next_token()) else {
        return false;
    };
    let c = t.next_token();
    // libinjection turns these names into functions when a `(` follows,
    // which folding can bring next to them (`user < x > y (1)`).
    let bare = |k: &Token| {
        k.token_type == TokenType::Bareword
            && !FUNCTION_NAMES
                .iter()
                .any(|f| value(k).eq_ignore_ascii_case(f.as_bytes()))
    };
    (a.token_type == TokenType::String || (bare(&a) && !words.merges(&a, &b)))
        && bare(&b)
        && !words.absorbs(&b)
        && c.as_ref()
            .is_none_or(|c| c.token_type != TokenType::LeftParenthesis && !words.merges(&b, c))
}

/// Barewords libinjection's fold makes functions before `(`.
const FUNCTION_NAMES: &[&str] = &[
    "USER_ID",
    "USER_NAME",
    "DATABASE",
    "PASSWORD",
    "USER",
    "CURRENT_USER",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "CURRENT_TIMESTAMP",
    "LOCALTIME",
    "LOCALTIMESTAMP",
];

/// [`context_clear`] in every context libinjection tries on the value.
pub fn prefix_clear(value: &[u8]) -> bool {
    let single = value.contains(&b'\'');
    let double = value.contains(&b'"');
    [
        Some(none_ansi()),
        Some(none_mysql()),
        single.then_some(single_ansi()),
        single.then_some(single_mysql()),
        double.then_some(double_mysql()),
    ]
    .into_iter()
    .flatten()
    .all(|f| context_clear(value, f))
}

/// A fixed hash key: the std default asks the host for randomness (WASI
/// `random_get`), and the keys are the library's, not the client's.
type Map<V> = HashMap<&'static str, V, BuildHasherDefault<DefaultHasher>>;

/// libinjection's keyword table (words and phrases, not fingerprints) as a
/// hash map, since its own lookup allocates and binary-searches all 9,600
/// entries; each entry keeps the type libinjection's lookup gives it.
struct Keywords {
    types: Map<TokenType>,
    /// First words of phrases whose tail is a keyword itself (`NATURAL` of
    /// `NATURAL FULL OUTER JOIN`): such a word can absorb what follows
    /// after the tail merged, even though it does not merge with the next
    /// word alone.
    absorbing: Map<()>,
    longest: usize,
}

impl Keywords {
    fn build() -> Keywords {
        let mut types = Map::default();
        let mut longest = 0;
        for k in SQL_KEYWORDS {
            if k.token_type == b'F' {
                continue;
            }
            types.insert(k.word, sqli_data::lookup_word(k.word));
            longest = longest.max(k.word.len());
        }
        let mut absorbing = Map::default();
        for k in SQL_KEYWORDS.iter().filter(|k| k.token_type != b'F') {
            let Some((head, tail)) = k.word.split_once(' ') else {
                continue;
            };
            if tail.contains(' ') && sqli_data::lookup_word(tail) != TokenType::Bareword {
                absorbing.insert(head, ());
            }
        }
        Keywords {
            types,
            absorbing,
            longest,
        }
    }

    /// The type libinjection's own lookup gives a word.
    fn lookup(&self, word: &str) -> TokenType {
        // Fingerprint entries start with `0`; a word never does, but let the
        // library answer rather than assume.
        if word.starts_with('0') {
            return sqli_data::lookup_word(word);
        }
        let mut buf = [0u8; 64];
        let Some(up) = buf
            .get_mut(..word.len())
            .filter(|_| word.len() <= self.longest)
        else {
            return TokenType::Bareword;
        };
        up.copy_from_slice(word.as_bytes());
        up.make_ascii_uppercase();
        std::str::from_utf8(up)
            .ok()
            .and_then(|w| self.types.get(w))
            .copied()
            .unwrap_or(TokenType::Bareword)
    }

    fn absorbs(&self, t: &Token) -> bool {
        let v = value(t);
        let mut buf = [0u8; 32];
        let Some(up) = buf.get_mut(..v.len()).filter(|_| t.len < 31) else {
            return true;
        };
        up.copy_from_slice(v);
        up.make_ascii_uppercase();
        std::str::from_utf8(up).map_or(true, |w| self.absorbing.contains_key(w))
    }

    /// Whether libinjection's fold would merge the two tokens into one
    /// keyword (`GROUP` `BY`): their values joined by a space are a keyword
    /// in its table (not a bareword entry). No phrase of three words ends in
    /// a multi-word keyword unless its first word is in `absorbing`, so
    /// any other second token that does not merge with the third is not
    /// absorbed later either.
    fn merges(&self, a: &Token, b: &Token) -> bool {
        // A value libinjection cut at its token size could be any word.
        a.len >= 31 || b.len >= 31 || self.phrase(value(a), value(b))
    }

    /// Whether `a b` (joined by a space) is a keyword in the table, not a
    /// bareword entry.
    fn phrase(&self, a: &[u8], b: &[u8]) -> bool {
        let mut buf = [0u8; 64];
        let n = a.len() + 1 + b.len();
        let Some(joined) = buf.get_mut(..n) else {
            // Longer than any keyword.
            return false;
        };
        joined[..a.len()].copy_from_slice(a);
        joined[a.len()] = b' ';
        joined[a.len() + 1..].copy_from_slice(b);
        std::str::from_utf8(joined).map_or(true, |w| self.lookup(w) != TokenType::Bareword)
    }
}

fn value(t: &Token) -> &[u8] {
    &t.val[..t.len.min(t.val.len())]
}

fn keywords() -> &'static Keywords {
    static KEYWORDS: OnceLock<Keywords> = OnceLock::new();
    KEYWORDS.get_or_init(Keywords::build)
}

/// Builds the keyword map ahead of the first request.
pub fn warm() {
    keywords();
}

/// For the unit test: every fingerprint libinjection flags, upper case.
pub fn flagged_fingerprints() -> impl Iterator<Item = &'static str> {
    SQL_KEYWORDS
        .iter()
        .filter(|k| k.token_type == b'F')
        .map(|k| k.word.trim_start_matches('0'))
}

fn hit(rule: &'static str, offset: usize) -> Hit {
    Hit {
        rule,
        severity: Severity::Critical,
        offset,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok<'a> {
    Word(&'a [u8]),
    Num,
    Quote,
    /// `--`, `#` or an unterminated `/*`: the rest of the statement is cut off.
    Comment,
    Op(u8),
}

/// Tokens with their offsets. `/* ... */` comments are dropped, as SQL does
/// (`UN/**/ION` is not `UNION` in SQL, but `UNION/**/SELECT` is `UNION SELECT`).
/// At most `MAX_TOKENS` are produced, which bounds the rule scans.
const MAX_TOKENS: usize = 512;

fn tokenize(s: &[u8]) -> Vec<(usize, Tok<'_>)> {
    let mut out = Vec::new();
    let mut i = 0;
    // End of the current line, found once per line: rescanning it at every
    // `#` or `--` would be quadratic in a value made of them.
    let mut eol = 0;
    while let Some(&b) = s.get(i) {
        if out.len() >= MAX_TOKENS {
            break;
        }
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b == b'/' && s.get(i + 1) == Some(&b'*') {
            match find(&s[i + 2..], b"*/") {
                Some(end) => i += 2 + end + 2,
                None => {
                    out.push((start, Tok::Comment));
                    break;
                }
            }
        } else if (b == b'-' && s.get(i + 1) == Some(&b'-')) || b == b'#' {
            // Prose uses `--` as a dash; a comment that cuts a query is at
            // (or near) the end of the line.
            if eol <= i {
                eol = s[i..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(s.len(), |p| i + p);
            }
            if eol - i > 16 {
                i += 1;
                out.push((start, Tok::Op(b)));
                continue;
            }
            out.push((start, Tok::Comment));
            // A comment ends at a newline; what follows is a new line of SQL.
            i = eol;
        } else if b.is_ascii_digit() {
            while s
                .get(i)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'.')
            {
                i += 1;
            }
            out.push((start, Tok::Num));
        } else if b.is_ascii_alphabetic() || b == b'_' || b == b'@' || b == b'$' {
            while s.get(i).is_some_and(|c| {
                c.is_ascii_alphanumeric() || matches!(c, b'_' | b'@' | b'$' | b'.')
            }) {
                i += 1;
            }
            out.push((start, Tok::Word(&s[start..i])));
        } else if matches!(b, b'\'' | b'"' | b'`') {
            out.push((start, Tok::Quote));
            i += 1;
        } else {
            out.push((start, Tok::Op(b)));
            i += 1;
        }
    }
    out
}

/// Functions and catalogue names that only SQL uses.
const SQL_ONLY: &[&[u8]] = &[
    b"information_schema",
    b"information_schema.tables",
    b"information_schema.columns",
    b"xp_cmdshell",
    b"sqlite_master",
    b"sysobjects",
    b"syscolumns",
    b"pg_sleep",
    b"pg_shadow",
    b"pg_catalog",
    b"benchmark",
    b"extractvalue",
    b"updatexml",
    b"load_file",
    b"dbms_pipe.receive_message",
    b"utl_inaddr.get_host_address",
    b"utl_http.request",
    b"@@version",
    b"@@datadir",
    b"@@hostname",
    b"mysql.user",
    b"sqlite_version",
    b"sqlite_compileoption_used",
    b"group_concat",
    b"waitfor",
];

const BOOLEAN: &[&[u8]] = &[b"or", b"and", b"xor", b"not", b"div"];
/// Comparison keywords prose does not use.
const COMPARE: &[&[u8]] = &[
    b"like", b"glob", b"regexp", b"rlike", b"between", b"notnull", b"isnull", b"sounds",
];
/// Comparison keywords that are also English; they count only when the value
/// also cuts the query (a comment, or an unbalanced quote).
const COMPARE_WEAK: &[&[u8]] = &[
    b"is", b"in", b"all", b"any", b"exists", b"null", b"true", b"false", b"match",
];
const STATEMENT: &[&[u8]] = &[
    b"select",
    b"insert",
    b"update",
    b"delete",
    b"drop",
    b"create",
    b"alter",
    b"truncate",
    b"exec",
    b"execute",
    b"declare",
    b"shutdown",
    b"waitfor",
    b"set",
    b"grant",
    b"rename",
];

fn is_word(t: Option<&(usize, Tok<'_>)>, set: &[&[u8]]) -> bool {
    matches!(t, Some((_, Tok::Word(w))) if set.contains(w))
}

fn syntax(value: &[u8]) -> Option<usize> {
    let raw = tokenize(value);
    // Parentheses are grouping noise to these rules: `union(select`, `or(1)=1`.
    let toks: Vec<(usize, Tok<'_>)> = raw
        .iter()
        .copied()
        .filter(|(_, t)| !matches!(t, Tok::Op(b'(' | b')')))
        .collect();
    let quotes = raw.iter().filter(|(_, t)| *t == Tok::Quote).count();
    let cut = quotes % 2 == 1 || raw.iter().any(|(_, t)| *t == Tok::Comment);
    if let Some(&(at, Tok::Word(w))) = toks.first() {
        if opens_condition(w, &toks[1..], cut) {
            return Some(at);
        }
    }
    if let Some(at) = clause_tail(value, &toks) {
        return Some(at);
    }
    for (n, &(at, t)) in toks.iter().enumerate() {
        let next = toks.get(n + 1);
        match t {
            Tok::Word(w) if SQL_ONLY.contains(&w) => {
                // A function needs its call (`benchmark(`); names stand alone.
                let called = raw
                    .iter()
                    .position(|&(a, _)| a == at)
                    .and_then(|r| raw.get(r + 1))
                    .is_some_and(|(_, t)| *t == Tok::Op(b'('));
                let name = w.contains(&b'.')
                    || w.starts_with(b"@@")
                    || w.ends_with(b"master")
                    || w.starts_with(b"sys")
                    || w == b"information_schema"
                    || w == b"xp_cmdshell";
                let waitfor = w == b"waitfor" && is_word(next, &[b"delay", b"time"]);
                if called || name || waitfor {
                    return Some(at);
                }
            }
            Tok::Word(b"union") => {
                let mut k = n + 1;
                while is_word(toks.get(k), &[b"all", b"distinct"]) {
                    k += 1;
                }
                if is_word(toks.get(k), &[b"select"]) {
                    return Some(at);
                }
            }
            Tok::Word(b"select") if select_list(&toks[n + 1..]) => return Some(at),
            Tok::Quote | Tok::Num if breakout(&toks, n, cut) => return Some(at),
            Tok::Op(b';') if stacked(&toks[n + 1..]) => return Some(at),
            _ => {}
        }
    }
    None
}

/// After a quote (or a leading number): a boolean operator with an operand
/// comparison, a clause keyword, or a comment that cuts the query.
fn breakout(toks: &[(usize, Tok<'_>)], n: usize, cut: bool) -> bool {
    if matches!(toks[n].1, Tok::Num) && n != 0 {
        return false;
    }
    let rest = &toks[n + 1..];
    let mut k = 0;
    // A quote may be followed by its closing twin or `;` first: `'';`, `');`.
    while matches!(rest.get(k), Some((_, Tok::Quote | Tok::Op(b';')))) {
        k += 1;
    }
    let Some(&(_, first)) = rest.get(k) else {
        return false;
    };
    let after = &rest[k + 1..];
    match first {
        // `1 or true`: a bare tautology ending the value.
        Tok::Word(w) if BOOLEAN.contains(&w) && is_bare_truth(after) => true,
        Tok::Word(w) if BOOLEAN.contains(&w) => operand(after, cut),
        Tok::Op(b'|') | Tok::Op(b'&') => {
            matches!(after.first(), Some((_, Tok::Op(b'|' | b'&')))) && operand(&after[1..], cut)
        }
        Tok::Word(w) if STATEMENT.contains(&w) && k > 0 => !after.is_empty(),
        Tok::Word(w) => clause(w, after, cut),
        Tok::Comment => matches!(toks[n].1, Tok::Quote) && n > 0,
        _ => false,
    }
}

/// A value that opens with the tail of a condition, as appended to a number
/// in the query (`id=1` and ` AND 2>1--`): a boolean operator, then a
/// comparison of a value (`2>1`, `'x'<>'y'`, `3 between 1 and 5`) or, with the
/// query cut, a truth value (`and not false#`); or `WAITFOR DELAY`, which
/// only SQL says (`PROCEDURE ANALYSE` is [`clause_tail`]'s, anywhere in the
/// value). Stricter than after a quote: a
/// statement word or `sleep` does not count ("and delete", "or sleep in").
fn opens_condition(w: &[u8], after: &[(usize, Tok<'_>)], cut: bool) -> bool {
    let next = after.first().map(|(_, t)| *t);
    match w {
        // Not `div` or `not`: `div[data-x="y"]` is CSS.
        b"or" | b"and" | b"xor" => {
            let after = match after.first() {
                Some((_, Tok::Word(b"not"))) => &after[1..],
                _ => after,
            };
            let window = &after[..after.len().min(4)];
            let compared = matches!(
                window.first(),
                Some((_, Tok::Num | Tok::Quote | Tok::Word(_)))
            ) && window.iter().skip(1).any(|&(_, t)| match t {
                Tok::Op(b'=' | b'<' | b'>' | b'!') => true,
                Tok::Word(w) => COMPARE.contains(&w),
                _ => false,
            });
            // `true`/`false` ending the statement (`;` and a comment may follow).
            let truth = matches!(after, [(_, Tok::Word(b"true" | b"false")), rest @ ..]
                if rest.iter().all(|(_, t)| matches!(t, Tok::Op(b';') | Tok::Comment)));
            (cut && truth) || compared
        }
        b"waitfor" => matches!(next, Some(Tok::Word(b"delay" | b"time"))),
        _ => false,
    }
}

/// A value that is a clause appended to a number or a name in the query,
/// and nothing else: at most one word or number, then `order by 5`,
/// `group by 1,2`, `having 1=1` or `limit 1,1`, then only `;` or a comment.
/// `having` with a comparison counts at the start of the value; the others
/// need the query cut by a bare comment ending the value (`#`, `-- -`,
/// `/*`), since prose says "please order by 5", "credit limit 5,000" and
/// "order by 2 #tbt". `procedure analyse` counts anywhere.
fn clause_tail(value: &[u8], toks: &[(usize, Tok<'_>)]) -> Option<usize> {
    if let Some(n) = toks
        .windows(2)
        .position(|w| w[0].1 == Tok::Word(b"procedure") && w[1].1 == Tok::Word(b"analyse"))
    {
        return Some(toks[n].0);
    }
    let lead = usize::from(matches!(
        toks.first(),
        Some((_, Tok::Num | Tok::Word(_)))
            if !matches!(toks[0].1, Tok::Word(b"order" | b"group" | b"having" | b"limit"))
    ));
    let clause = toks.get(lead..)?;
    let &(at, first) = clause.first()?;
    let numbers = |t: &[(usize, Tok<'_>)]| -> usize {
        // `N`, `N,N`, ...: how many tokens the list takes.
        let mut k = 0;
        while matches!(t.get(k), Some((_, Tok::Num))) {
            k += 1;
            if !matches!(t.get(k), Some((_, Tok::Op(b','))))
                || !matches!(t.get(k + 1), Some((_, Tok::Num)))
            {
                break;
            }
            k += 1;
        }
        k
    };
    let (len, needs_cut) = match first {
        Tok::Word(b"order" | b"group") if is_word(clause.get(1), &[b"by"]) => {
            match numbers(&clause[2..]) {
                0 => return None,
                k => (2 + k, true),
            }
        }
        Tok::Word(b"limit") => match numbers(&clause[1..]) {
            0 => return None,
            k => (1 + k, true),
        },
        Tok::Word(b"having") => match clause.get(1..4)? {
            [(_, Tok::Num | Tok::Quote), (_, Tok::Op(b'=' | b'<' | b'>')), (_, Tok::Num | Tok::Quote)] => {
                (4, lead > 0)
            }
            _ => return None,
        },
        _ => return None,
    };
    let tail = &clause[len..];
    let tail_ok = tail
        .iter()
        .all(|(_, t)| matches!(t, Tok::Op(b';') | Tok::Comment));
    let cut = tail
        .iter()
        .any(|&(c, t)| t == Tok::Comment && bare_comment(&value[c..]));
    (tail_ok && (cut || !needs_cut)).then_some(at)
}

/// A comment marker with nothing after it but blanks, `-`, `+` and `;`
/// (`#`, `-- -`, `--+`, `/*`), as injections end; not a hashtag (`#tbt`)
/// or a signature (`-- see notes`).
fn bare_comment(rest: &[u8]) -> bool {
    let body = rest
        .strip_prefix(b"#")
        .or_else(|| rest.strip_prefix(b"--"))
        .or_else(|| rest.strip_prefix(b"/*"));
    body.is_some_and(|b| {
        b.iter()
            .all(|c| c.is_ascii_whitespace() || matches!(c, b'-' | b'+' | b';'))
    })
}

fn is_bare_truth(after: &[(usize, Tok<'_>)]) -> bool {
    matches!(
        after,
        [(_, Tok::Word(b"true" | b"false"))]
            | [(_, Tok::Word(b"true" | b"false")), (_, Tok::Comment)]
    )
}

/// A clause keyword right after a breakout, with the word that makes it SQL:
/// `order by`, `group by`, `having count`, `collate nocase`, `limit 1`, ...
/// Prose words (`from`, `where`, `union`) need a cut query to count.
fn clause(w: &[u8], after: &[(usize, Tok<'_>)], cut: bool) -> bool {
    let next = after.first().map(|(_, t)| *t);
    match w {
        b"order" | b"group" => next == Some(Tok::Word(b"by")),
        b"having" | b"collate" | b"procedure" => next.is_some(),
        b"limit" | b"offset" => next == Some(Tok::Num),
        b"notnull" | b"isnull" => true,
        b"escape" => next == Some(Tok::Quote),
        b"waitfor" => matches!(next, Some(Tok::Word(b"delay" | b"time"))),
        b"union" | b"from" | b"where" | b"into" => cut && next.is_some(),
        _ => false,
    }
}

/// Within the next few tokens: a comparison, a SQL-only or called function,
/// a tautology, or a trailing comment.
fn operand(after: &[(usize, Tok<'_>)], cut: bool) -> bool {
    let window = &after[..after.len().min(6)];
    let mut has_value = false;
    for &(_, t) in window {
        match t {
            Tok::Op(b'=' | b'<' | b'>' | b'!') => return true,
            Tok::Word(w) if COMPARE.contains(&w) || STATEMENT.contains(&w) => return true,
            Tok::Word(w) if cut && COMPARE_WEAK.contains(&w) => return true,
            Tok::Word(w) if SQL_ONLY.contains(&w) || w == b"sleep" => return true,
            Tok::Comment => return has_value,
            Tok::Num | Tok::Quote | Tok::Word(_) => has_value = true,
            _ => {}
        }
    }
    false
}

/// `SELECT` followed by a column list SQL would accept and then `FROM`
/// (`select a, b from`, `select * from`, `select count(*) from`), a number
/// list (`select 1,2,3`) or a system variable (`select @@version`).
fn select_list(rest: &[(usize, Tok<'_>)]) -> bool {
    let Some(&(_, first)) = rest.first() else {
        return false;
    };
    let second = rest.get(1).map(|(_, t)| *t);
    let from = rest.iter().take(64).any(|(_, t)| *t == Tok::Word(b"from"));
    match first {
        Tok::Num => second == Some(Tok::Op(b',')) || from,
        Tok::Op(b'*') => from,
        Tok::Word(w) if w.starts_with(b"@@") || SQL_ONLY.contains(&w) => true,
        Tok::Word(w) => {
            from && ([
                b"distinct".as_slice(),
                b"null",
                b"top",
                b"count",
                b"concat",
                b"char",
            ]
            .contains(&w)
                || second == Some(Tok::Op(b',')))
        }
        _ => false,
    }
}

/// `;` then a statement keyword with an object: `; drop table`, `;shutdown`.
fn stacked(rest: &[(usize, Tok<'_>)]) -> bool {
    let Some(&(_, Tok::Word(w))) = rest.first() else {
        return false;
    };
    let second = rest.get(1).map(|(_, t)| *t);
    match w {
        b"drop" | b"truncate" | b"alter" | b"create" => {
            matches!(
                second,
                Some(Tok::Word(
                    b"table" | b"database" | b"user" | b"procedure" | b"function"
                ))
            )
        }
        b"delete" => second == Some(Tok::Word(b"from")),
        // `; update users set role='admin'`: a table, `set`, a column, `=`
        // and a value SQL spells (a literal, `true`, a subquery), where
        // prose has a word ("; update the set list = done").
        b"update" => matches!(
            rest.get(1..6),
            Some([
                (_, Tok::Word(_)),
                (_, Tok::Word(b"set")),
                (_, Tok::Word(_)),
                (_, Tok::Op(b'=')),
                (
                    _,
                    Tok::Quote | Tok::Num | Tok::Word(b"true" | b"false" | b"null" | b"select")
                )
            ])
        ),
        b"insert" => second == Some(Tok::Word(b"into")),
        b"shutdown" => true,
        b"exec" | b"execute" => {
            matches!(second, Some(Tok::Word(n)) if n.starts_with(b"xp_") || n.starts_with(b"sp_") || n.starts_with(b"master"))
        }
        b"waitfor" => matches!(second, Some(Tok::Word(b"delay" | b"time"))),
        b"select" => select_list(&rest[1..]),
        b"declare" | b"set" => matches!(second, Some(Tok::Word(v)) if v.starts_with(b"@")),
        _ => false,
    }
}

/// MongoDB query operators where a plain value is expected: `id[$ne]=1`
/// (in a parameter name) or a JSON key or value that is exactly the operator.
const MONGO: &[&str] = &[
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$regex",
    "$where",
    "$in",
    "$nin",
    "$exists",
    "$or",
    "$and",
    "$not",
    "$nor",
    "$expr",
    "$function",
    "$elemmatch",
];

fn nosql_operator(value: &[u8]) -> Option<usize> {
    if !value.contains(&b'$') {
        return None;
    }
    for op in MONGO {
        let op = op.as_bytes();
        if value == op {
            return Some(0);
        }
        if let Some(at) = value.windows(op.len() + 2).position(|w| {
            w.first() == Some(&b'[') && w.last() == Some(&b']') && &w[1..w.len() - 1] == op
        }) {
            return Some(at);
        }
    }
    None
}

#[cfg(test)]
#[path = "sqli_tests.rs"]
mod tests;
