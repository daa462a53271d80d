//! Writing to the terminal: the faces print, the libraries never do.

/// Print a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use outln;
