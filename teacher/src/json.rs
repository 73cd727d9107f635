//! Just enough JSON (RFC 8259) to read what the checker prints with
//! `--json`: a strict parser (anything else is an error, never a guess)
//! and lenient accessors, so that a missing field reads as `Null` and a
//! chain of lookups never panics.

/// A JSON value. Objects keep their fields in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

static NULL: Json = Json::Null;

impl Json {
    /// The one JSON value `text` holds (whitespace around it allowed).
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut parser = Parser { chars: text.chars().peekable(), depth: 0 };
        let value = parser.value()?;
        parser.skip_space();
        match parser.chars.next() {
            None => Ok(value),
            Some(c) => Err(format!("'{c}' after the JSON value")),
        }
    }

    /// The field `key` of an object; `Null` if there is none.
    pub fn at(&self, key: &str) -> &Json {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }

    /// The items of an array; none if it is not one.
    pub fn items(&self) -> &[Json] {
        match self {
            Json::Array(items) => items,
            _ => &[],
        }
    }

    /// The text of a string; empty if it is not one.
    pub fn text(&self) -> &str {
        match self {
            Json::String(text) => text,
            _ => "",
        }
    }

    /// The value of a boolean, if it is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Json::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// Nesting deeper than this is refused, not followed down the stack.
const MAX_DEPTH: usize = 64;

struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    depth: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while self.chars.peek().is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r')) {
            self.chars.next();
        }
    }

    fn expect(&mut self, wanted: char) -> Result<(), String> {
        self.skip_space();
        match self.chars.next() {
            Some(c) if c == wanted => Ok(()),
            Some(c) => Err(format!("'{wanted}' expected, found '{c}'")),
            None => Err(format!("'{wanted}' expected, found the end")),
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_space();
        let first = self.chars.next().ok_or("a value expected, found the end")?;
        match first {
            '{' | '[' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err("nested too deep".into());
                }
                let value = if first == '{' { self.object()? } else { self.array()? };
                self.depth -= 1;
                Ok(value)
            }
            '"' => self.string().map(Json::String),
            '-' | '0'..='9' => self.number(first),
            c if c.is_ascii_alphabetic() => {
                let mut word = String::from(c);
                while let Some(&c) = self.chars.peek().filter(|c| c.is_ascii_alphabetic()) {
                    word.push(c);
                    self.chars.next();
                }
                match word.as_str() {
                    "true" => Ok(Json::Bool(true)),
                    "false" => Ok(Json::Bool(false)),
                    "null" => Ok(Json::Null),
                    _ => Err(format!("'{word}' is not JSON")),
                }
            }
            c => Err(format!("'{c}' cannot start a JSON value")),
        }
    }

    fn object(&mut self) -> Result<Json, String> {
        let mut fields = Vec::new();
        self.skip_space();
        if self.chars.peek() == Some(&'}') {
            self.chars.next();
            return Ok(Json::Object(fields));
        }
        loop {
            self.expect('"')?;
            let key = self.string()?;
            self.expect(':')?;
            fields.push((key, self.value()?));
            self.skip_space();
            match self.chars.next() {
                Some(',') => {}
                Some('}') => return Ok(Json::Object(fields)),
                _ => return Err("',' or '}' expected in an object".into()),
            }
        }
    }

    fn array(&mut self) -> Result<Json, String> {
        let mut items = Vec::new();
        self.skip_space();
        if self.chars.peek() == Some(&']') {
            self.chars.next();
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.chars.next() {
                Some(',') => {}
                Some(']') => return Ok(Json::Array(items)),
                _ => return Err("',' or ']' expected in an array".into()),
            }
        }
    }

    /// A string, its opening quote already read.
    fn string(&mut self) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.chars.next().ok_or("a string without its end")? {
                '"' => return Ok(text),
                '\\' => match self.chars.next().ok_or("an escape without its end")? {
                    '"' => text.push('"'),
                    '\\' => text.push('\\'),
                    '/' => text.push('/'),
                    'b' => text.push('\u{8}'),
                    'f' => text.push('\u{c}'),
                    'n' => text.push('\n'),
                    'r' => text.push('\r'),
                    't' => text.push('\t'),
                    'u' => {
                        let unit = self.hex4()?;
                        let c = if (0xD800..0xDC00).contains(&unit) {
                            // A surrogate pair: \uD83D\uDE00.
                            if self.chars.next() != Some('\\') || self.chars.next() != Some('u') {
                                return Err("a lone surrogate in a string".into());
                            }
                            let low = self.hex4()?;
                            if !(0xDC00..0xE000).contains(&low) {
                                return Err("a lone surrogate in a string".into());
                            }
                            char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))
                        } else {
                            char::from_u32(unit)
                        };
                        text.push(c.ok_or("a lone surrogate in a string")?);
                    }
                    c => return Err(format!("no escape \\{c}")),
                },
                c if c < ' ' => return Err("a control character in a string".into()),
                c => text.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let hex: String = (0..4).filter_map(|_| self.chars.next()).collect();
        u32::from_str_radix(&hex, 16)
            .ok()
            .filter(|_| hex.len() == 4)
            .ok_or(format!("'\\u{hex}' is not an escape"))
    }

    fn number(&mut self, first: char) -> Result<Json, String> {
        let mut number = String::from(first);
        while let Some(&c) = self.chars.peek().filter(|c| c.is_ascii_digit() || ".eE+-".contains(**c)) {
            number.push(c);
            self.chars.next();
        }
        number.parse().map(Json::Number).map_err(|_| format!("'{number}' is not a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_checker_writes() {
        let json = Json::parse(
            r##" {"passed":false,"score":2,"exercises":{"5":{"checks":[{"name":"a","see":"#[cfg(feature = \"reaper\")] «x» \u00e9\ud83d\ude00\n"}]}}} "##,
        )
        .unwrap();
        assert_eq!(json.at("passed").as_bool(), Some(false));
        assert_eq!(json.at("score"), &Json::Number(2.0));
        let check = &json.at("exercises").at("5").at("checks").items()[0];
        assert_eq!(check.at("see").text(), "#[cfg(feature = \"reaper\")] «x» é😀\n");
        assert_eq!(json.at("missing").at("deeper"), &Json::Null);
        assert!(json.at("missing").items().is_empty());
    }

    #[test]
    fn refuses_what_is_not_json() {
        for bad in [
            "",
            "{",
            "{\"a\":1,}",
            "[1 2]",
            "{\"a\":1} x",
            "\"a\nb\"",
            "\"\\ud83d\"",
            "True",
            "SCORE 3/3",
            &"[".repeat(1000),
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?} is not JSON");
        }
    }
}
