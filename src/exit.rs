//! Exit codes, one meaning for every command: 0 accepted / verified / every check passed, 1
//! refused / not verified / something to fix, 2 a configuration or usage error.

use std::process::ExitCode;

/// Accepted, verified, signed, every check passed.
pub const OK: u8 = 0;
/// Refused, not verified, a check or the gate failed.
pub const REFUSED: u8 = 1;
/// A configuration or usage error (a broken policy, a bad argument, an unusable input).
pub const USAGE: u8 = 2;

/// [`OK`] when `ok`, else [`REFUSED`].
pub fn ok_or_refused(ok: bool) -> ExitCode {
    ExitCode::from(if ok { OK } else { REFUSED })
}
