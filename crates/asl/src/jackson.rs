//! JSON syntax errors worded as AWS's parser (Jackson) words them.
//!
//! AWS reads definitions and execution inputs with Jackson, and its error texts reach users
//! (`InvalidExecutionInput`, `INVALID_JSON_DESCRIPTION`). serde_json finds the same errors but
//! words and places them differently, so this scanner walks the text as Jackson does and
//! reports the first problem: what Jackson says and where its location points (1-based, one
//! past the character that was read).

/// Jackson's list of what may start a value.
const VALUE_LIST: &str = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')";

/// How much of the document Jackson quotes in a location.
const SOURCE_LIMIT: usize = 500;

/// A syntax error as Jackson reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What is wrong (`Unrecognized token 'x': was expecting …`).
    pub problem: String,
    /// Where: `[Source: (String)"…"; line: L, column: C]`.
    pub location: String,
}

impl SyntaxError {
    /// The Java exception class AWS names in front of the message.
    pub fn exception_class(&self) -> &'static str {
        if self.problem.starts_with("Unexpected end-of-input") {
            "com.fasterxml.jackson.core.io.JsonEOFException"
        } else {
            "com.fasterxml.jackson.core.JsonParseException"
        }
    }
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n at {}", self.problem, self.location)
    }
}

/// The first syntax error of `text` as Jackson reports it; `None` when Jackson reads a value
/// (trailing content after it is not looked at, as `ObjectMapper.readTree` does not).
pub fn syntax_error(text: &str) -> Option<SyntaxError> {
    let chars: Vec<char> = text.chars().collect();
    let mut scanner = Scanner {
        text,
        chars: &chars,
        pos: 0,
    };
    let problem = scanner.value().err()?;
    let location = scanner.location(scanner.pos);
    Some(SyntaxError { problem, location })
}

struct Scanner<'t> {
    text: &'t str,
    chars: &'t [char],
    /// The next character to read.
    pos: usize,
}

type Scan = Result<(), String>;

impl Scanner<'_> {
    /// `[Source: (String)"…"; line: L, column: C]` for the position `at` (characters read).
    fn location(&self, at: usize) -> String {
        let read = &self.chars[..at.min(self.chars.len())];
        let line = 1 + read.iter().filter(|c| **c == '\n').count();
        let column = 1 + read.iter().rev().take_while(|c| **c != '\n').count();
        let total = self.chars.len();
        let source = if total > SOURCE_LIMIT {
            let shown: String = self.chars[..SOURCE_LIMIT].iter().collect();
            format!("\"{shown}\"[truncated {} chars]", total - SOURCE_LIMIT)
        } else {
            format!("\"{}\"", self.text)
        };
        format!("[Source: (String){source}; line: {line}, column: {column}]")
    }

    /// Reads the next character that is not whitespace; `None` at the end.
    fn next_significant(&mut self) -> Option<char> {
        while let Some(&c) = self.chars.get(self.pos) {
            self.pos += 1;
            if !matches!(c, ' ' | '\t' | '\n' | '\r') {
                return Some(c);
            }
        }
        None
    }

    fn unexpected(c: char, expecting: &str) -> String {
        let shown = if c.is_control() {
            format!("(CTRL-CHAR, code {})", c as u32)
        } else {
            format!("'{c}' (code {})", c as u32)
        };
        format!("Unexpected character ({shown}): {expecting}")
    }

    fn end_of_input(&self, what: &str, start: usize) -> String {
        format!(
            "Unexpected end-of-input: expected close marker for {what} (start marker at {})",
            self.location(start)
        )
    }

    fn value(&mut self) -> Scan {
        let Some(c) = self.next_significant() else {
            return Err("No content to map due to end-of-input".into());
        };
        match c {
            '{' => self.object(self.pos - 1),
            '[' => self.array(self.pos - 1),
            '"' => self.string(),
            '-' | '0'..='9' => self.number(),
            c if c.is_alphabetic() || c == '_' || c == '$' => self.word(),
            c => Err(Self::unexpected(
                c,
                &format!("expected a valid value {VALUE_LIST}"),
            )),
        }
    }

    /// `true`, `false`, `null`, or a word Jackson does not know.
    fn word(&mut self) -> Scan {
        let start = self.pos - 1;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '$'))
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        if matches!(word.as_str(), "true" | "false" | "null") {
            return Ok(());
        }
        Err(format!(
            "Unrecognized token '{word}': was expecting {VALUE_LIST}"
        ))
    }

    fn number(&mut self) -> Scan {
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E'))
        {
            self.pos += 1;
        }
        Ok(())
    }

    fn string(&mut self) -> Scan {
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return Err(
                    "Unexpected end-of-input: was expecting closing quote for a string value"
                        .into(),
                );
            };
            self.pos += 1;
            match c {
                '"' => return Ok(()),
                '\\' => self.pos += 1,
                c if (c as u32) < 0x20 => {
                    return Err(format!(
                        "Illegal unquoted character ((CTRL-CHAR, code {})): has to be escaped using backslash to be included in string value",
                        c as u32
                    ))
                }
                _ => {}
            }
        }
    }

    fn object(&mut self, start: usize) -> Scan {
        let mut first = true;
        loop {
            let Some(c) = self.next_significant() else {
                return Err(self.end_of_input("Object", start));
            };
            match c {
                '}' if first => return Ok(()),
                '"' => self.string()?,
                c => {
                    return Err(Self::unexpected(
                        c,
                        "was expecting double-quote to start field name",
                    ))
                }
            }
            match self.next_significant() {
                Some(':') => {}
                Some(c) => {
                    return Err(Self::unexpected(
                        c,
                        "was expecting a colon to separate field name and value",
                    ))
                }
                None => return Err(self.end_of_input("Object", start)),
            }
            self.value_in(start, "Object")?;
            match self.next_significant() {
                Some(',') => first = false,
                Some('}') => return Ok(()),
                Some(c) => {
                    return Err(Self::unexpected(
                        c,
                        "was expecting comma to separate Object entries",
                    ))
                }
                None => return Err(self.end_of_input("Object", start)),
            }
        }
    }

    fn array(&mut self, start: usize) -> Scan {
        let save = self.pos;
        if self.next_significant() == Some(']') {
            return Ok(());
        }
        self.pos = save;
        loop {
            self.value_in(start, "Array")?;
            match self.next_significant() {
                Some(',') => {}
                Some(']') => return Ok(()),
                Some(c) => {
                    return Err(Self::unexpected(
                        c,
                        "was expecting comma to separate Array entries",
                    ))
                }
                None => return Err(self.end_of_input("Array", start)),
            }
        }
    }

    /// A value inside a container that started at `start`: the end of the input there is
    /// the container's missing close marker.
    fn value_in(&mut self, start: usize, what: &str) -> Scan {
        let save = self.pos;
        if self.next_significant().is_none() {
            return Err(self.end_of_input(what, start));
        }
        self.pos = save;
        self.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_locations() {
        let at = |text: &str, line: u32, column: u32| {
            format!("\n at [Source: (String)\"{text}\"; line: {line}, column: {column}]")
        };
        let expecting = "(JSON String, Number, Array, Object or token 'null', 'true' or 'false')";
        let cases: Vec<(&str, String)> = vec![
            // Recorded by AWS (ValidateStateMachineDefinition).
            (
                "not a definition",
                format!("Unrecognized token 'not': was expecting {expecting}{}", at("not a definition", 1, 4)),
            ),
            // From an AWS StartExecution error a user posted.
            (
                r#"{"courseId": "6225", "department": "CSYE", "boardId": """, "size": "0"}"#,
                format!(
                    "Unexpected character ('\"' (code 34)): was expecting comma to separate Object entries{}",
                    at(r#"{"courseId": "6225", "department": "CSYE", "boardId": """, "size": "0"}"#, 1, 58)
                ),
            ),
            (
                "{a: 1}",
                format!("Unexpected character ('a' (code 97)): was expecting double-quote to start field name{}", at("{a: 1}", 1, 3)),
            ),
            (
                "{\"a\" 1}",
                format!("Unexpected character ('1' (code 49)): was expecting a colon to separate field name and value{}", at("{\"a\" 1}", 1, 7)),
            ),
            (
                "[1 2]",
                format!("Unexpected character ('2' (code 50)): was expecting comma to separate Array entries{}", at("[1 2]", 1, 5)),
            ),
            (
                "[1,]",
                format!("Unexpected character (']' (code 93)): expected a valid value {expecting}{}", at("[1,]", 1, 5)),
            ),
            (
                "{\"a\":1",
                format!(
                    "Unexpected end-of-input: expected close marker for Object (start marker at [Source: (String)\"{{\"a\":1\"; line: 1, column: 1]){}",
                    at("{\"a\":1", 1, 7)
                ),
            ),
            (
                "{\n\"a\": tru}",
                format!("Unrecognized token 'tru': was expecting {expecting}{}", at("{\n\"a\": tru}", 2, 9)),
            ),
        ];
        for (text, want) in cases {
            let got = syntax_error(text).map(|e| e.to_string());
            assert_eq!(got, Some(want), "{text}");
        }
        for valid in [
            "{}",
            "[]",
            " {\"a\": [1, -2.5e3, true, null, \"x\\\"y\"]} ",
            "\"s\"",
            "{} trailing",
        ] {
            assert_eq!(syntax_error(valid), None, "{valid}");
        }
    }

    #[test]
    fn long_sources_are_truncated() {
        let text = format!("[{}", "1,".repeat(400));
        let got = syntax_error(&text)
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            got.contains("\"[truncated 301 chars]; line: 1, column: 802]"),
            "{got}"
        );
    }
}
