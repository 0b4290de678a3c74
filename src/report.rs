//! How an error is told to a person: its message, then each cause in its chain that the text so
//! far does not already say, joined by ": ". Every error of stocklake and of its dependencies goes
//! through this, so a cause that a message embeds and also exposes as its `source()` (many
//! libraries do both) is printed once.

use std::error::Error;

/// `error: cause: cause`, each cause once, without the stack traces some libraries append to
/// their messages (the Delta kernel's errors carry one).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = without_backtrace(&e.to_string()).to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let message = cause.to_string();
        let said = without_backtrace(&message);
        if !said.is_empty() && !text.contains(said) {
            text.push_str(": ");
            text.push_str(said);
        }
        next = cause.source();
    }
    text
}

/// `message` up to a stack trace that follows it (a line `0: …`, then `1: …`, each frame
/// numbered).
fn without_backtrace(message: &str) -> &str {
    let mut at = 0;
    for line in message.split_inclusive('\n') {
        let frame = line.trim_start();
        if at > 0 && frame.starts_with("0: ") {
            return message[..at].trim_end();
        }
        at += line.len();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum Inner {
        #[error("disk full")]
        Full,
    }

    #[derive(Debug, thiserror::Error)]
    enum Outer {
        #[error("writing lake/ticks/a.parquet")]
        Plain(#[source] Inner),
        #[error("writing lake/ticks/b.parquet: {0}")]
        Embedding(#[source] Inner),
    }

    #[test]
    fn stack_traces_in_messages_are_left_out() {
        let traced = "Json error: unexpected 'g'\n   0: kernel::Error::with_backtrace\n   1: \
                      core::ops::function::FnMut::call_mut\n             at src/x.rs:1:2\n";
        assert_eq!(without_backtrace(traced), "Json error: unexpected 'g'");
        assert_eq!(without_backtrace("0: not a trace"), "0: not a trace");
        assert_eq!(without_backtrace("a\nb"), "a\nb");
    }

    #[test]
    fn each_cause_is_said_once() {
        assert_eq!(
            chain(&Outer::Plain(Inner::Full)),
            "writing lake/ticks/a.parquet: disk full"
        );
        assert_eq!(
            chain(&Outer::Embedding(Inner::Full)),
            "writing lake/ticks/b.parquet: disk full"
        );
    }
}
