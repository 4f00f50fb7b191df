//! Where the value of `plant state set` comes from: the argument, a file or stdin.
//!
//! `VALUE` is taken literally; `@PATH` reads the file at PATH; `-`, or no `VALUE` at all, reads
//! stdin — unless stdin is a terminal and no `VALUE` was given, which would silently wait for
//! typing, so that is an error instead. Bytes are kept exactly as read (a file's trailing newline
//! is part of the value), so `plant state get --raw` gives back what `set @FILE` stored. A literal
//! value starting with `@` can be piped through stdin. State values are text: input that is not
//! UTF-8 is refused rather than mangled.

use std::io::Read;

use anyhow::Context as _;

/// Where a value is read from, as parsed from the optional `VALUE` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// The argument itself.
    Literal(String),
    /// A file, from `@PATH`.
    File(String),
    /// Stdin; `explicit` when asked for with `-` rather than by omitting `VALUE`.
    Stdin {
        /// `true` for `-`.
        explicit: bool,
    },
}

impl ValueSource {
    /// Interprets the `VALUE` argument.
    pub fn parse(arg: Option<&str>) -> ValueSource {
        match arg {
            None => ValueSource::Stdin { explicit: false },
            Some("-") => ValueSource::Stdin { explicit: true },
            Some(text) => match text.strip_prefix('@') {
                Some(path) => ValueSource::File(path.to_string()),
                None => ValueSource::Literal(text.to_string()),
            },
        }
    }

    /// Reads the value; `stdin` and `stdin_is_terminal` are injected so tests need no terminal.
    pub fn read(self, stdin: &mut dyn Read, stdin_is_terminal: bool) -> anyhow::Result<String> {
        match self {
            ValueSource::Literal(text) => Ok(text),
            ValueSource::File(path) => {
                anyhow::ensure!(!path.is_empty(), "no file after '@': use @FILE");
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read value file {path}"))?;
                utf8(bytes, &format!("file {path}"))
            }
            ValueSource::Stdin { explicit } => {
                anyhow::ensure!(
                    explicit || !stdin_is_terminal,
                    "no value: pass VALUE, @FILE or pipe stdin"
                );
                let mut bytes = Vec::new();
                stdin
                    .read_to_end(&mut bytes)
                    .context("cannot read the value from stdin")?;
                utf8(bytes, "stdin")
            }
        }
    }
}

fn utf8(bytes: Vec<u8>, origin: &str) -> anyhow::Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        anyhow::anyhow!(
            "the value from {origin} is not UTF-8 text (invalid byte at offset {}); state values are text",
            err.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_argument() {
        assert_eq!(
            ValueSource::parse(None),
            ValueSource::Stdin { explicit: false }
        );
        assert_eq!(
            ValueSource::parse(Some("-")),
            ValueSource::Stdin { explicit: true }
        );
        assert_eq!(
            ValueSource::parse(Some("@a/b.json")),
            ValueSource::File("a/b.json".into())
        );
        assert_eq!(
            ValueSource::parse(Some("21.5 °C")),
            ValueSource::Literal("21.5 °C".into())
        );
    }

    #[test]
    fn reads_literal_file_and_stdin() {
        let mut no_stdin: &[u8] = b"";
        let value = ValueSource::Literal("x".into())
            .read(&mut no_stdin, true)
            .unwrap();
        assert_eq!(value, "x");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.txt");
        std::fs::write(&path, "line\n").unwrap();
        let value = ValueSource::parse(Some(&format!("@{}", path.display())))
            .read(&mut no_stdin, true)
            .unwrap();
        assert_eq!(value, "line\n", "bytes kept exactly");

        let mut stdin: &[u8] = "grüß\n".as_bytes();
        let value = ValueSource::parse(None).read(&mut stdin, false).unwrap();
        assert_eq!(value, "grüß\n");
    }

    #[test]
    fn refuses_a_terminal_without_value_and_non_utf8() {
        let mut stdin: &[u8] = b"";
        let err = ValueSource::parse(None).read(&mut stdin, true).unwrap_err();
        assert_eq!(err.to_string(), "no value: pass VALUE, @FILE or pipe stdin");
        // `-` is an explicit request to read the terminal.
        assert!(ValueSource::parse(Some("-")).read(&mut stdin, true).is_ok());

        let mut bad: &[u8] = b"\xff\xfe";
        let err = ValueSource::parse(None).read(&mut bad, false).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");

        let err = ValueSource::parse(Some("@/no/such/file"))
            .read(&mut stdin, false)
            .unwrap_err();
        assert!(err.to_string().contains("/no/such/file"), "{err}");
    }
}
