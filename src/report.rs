//! How an error is told to a person: its message, then each cause in its chain that the text so
//! far does not already say, joined by ": ". Every error of stocklake and of its dependencies goes
//! through this, so a cause that a message embeds and also exposes as its `source()` (many
//! libraries do both) is printed once.

use std::error::Error;

/// `error: cause: cause`, each cause once.
pub fn chain(e: &(dyn Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let said = cause.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        next = cause.source();
    }
    text
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
