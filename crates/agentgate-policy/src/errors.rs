//! An error and its causes as one line, the way refusals and the command line show them.

/// `e` and every cause, joined by ": ".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

/// `e` and its causes, joined by ": ", leaving out a cause whose text is already there (errors
/// that repeat their source's message, as the Sigstore and keyless errors do).
pub fn error_chain_distinct(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        let text = inner.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cur = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn chains() {
        let e = Repeats(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner: inner");
        assert_eq!(error_chain_distinct(&e), "outer: inner");
    }
}
