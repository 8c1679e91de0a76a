//! AWS's rule for the characters of resource names (state machines, executions, Map Run
//! labels).

/// Whitespace, brackets, wildcards, special and control characters may not appear in names.
pub fn is_reserved(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(
            c,
            '<' | '>'
                | '{'
                | '}'
                | '['
                | ']'
                | '?'
                | '*'
                | '"'
                | '#'
                | '%'
                | '\\'
                | '^'
                | '|'
                | '~'
                | '`'
                | '$'
                | '&'
                | ','
                | ';'
                | ':'
                | '/'
        )
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || ('\u{fffe}'..='\u{ffff}').contains(&c)
}
