//! How an error is told to a person: its message, then each cause in its chain that the text so
//! far does not already say, joined by ": ". Every error of stocklake and of its dependencies goes
//! through this, so a cause that a message embeds and also exposes as its `source()` (many
//! libraries do both) is printed once. An S3 error's XML body is told by its code and message.

use std::error::Error;

/// `error: cause: cause`, each cause once, without the stack traces some libraries append to
/// their messages (the Delta kernel's errors carry one).
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = s3_error_body(without_backtrace(&e.to_string()));
    let mut next = e.source();
    while let Some(cause) = next {
        let message = s3_error_body(without_backtrace(&cause.to_string()));
        let said = message.as_str();
        if !said.is_empty() && !text.contains(said) {
            text.push_str(": ");
            text.push_str(said);
        }
        next = cause.source();
    }
    text
}

/// `message` with the XML body of an S3 error answer (`<?xml …?>` and a newline, then
/// `<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>…</Error>`,
/// as object_store quotes it) replaced by `SlowDown: Please reduce your request rate.`, so that
/// the error stays one line.
fn s3_error_body(message: &str) -> String {
    let Some(start) = message.find("<?xml").or_else(|| message.find("<Error>")) else {
        return message.to_string();
    };
    let end = message[start..]
        .find("</Error>")
        .map_or(message.len(), |i| start + i + "</Error>".len());
    let element = |name: &str| {
        let body = &message[start..end];
        let open = format!("<{name}>");
        let from = body.find(&open)? + open.len();
        let to = body[from..].find(&format!("</{name}>"))? + from;
        Some(body[from..to].to_string())
    };
    let said = match (element("Code"), element("Message")) {
        (Some(code), Some(text)) => format!("{code}: {text}"),
        (Some(code), None) => code,
        _ => return message.to_string(),
    };
    format!("{}{said}{}", &message[..start], &message[end..])
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
    fn an_s3_error_body_is_its_code_and_message() {
        let quoted = "Error performing PUT http://h/b/k in 2s - Server returned non-2xx status \
                      code: 503 Service Unavailable: <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                      <Error><Code>SlowDown</Code><Message>Please reduce your request rate.\
                      </Message><Resource>/b/k</Resource></Error>";
        assert_eq!(
            s3_error_body(quoted),
            "Error performing PUT http://h/b/k in 2s - Server returned non-2xx status code: 503 \
             Service Unavailable: SlowDown: Please reduce your request rate."
        );
        assert_eq!(s3_error_body("no <xml> here"), "no <xml> here");
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
