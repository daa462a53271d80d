//! `agentgate doctor`: print the installation's checks ([`crate::doctor`]) and exit 1 if one
//! failed.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::doctor::Status;
use crate::exit;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// The bare repository to check.
    #[arg(long, value_name = "BARE")]
    pub repo: Option<PathBuf>,
    /// A hooks directory shared through `core.hooksPath`.
    #[arg(long, value_name = "DIR")]
    pub hooks_dir: Option<PathBuf>,
    /// Check this policy instead of the one the hook would find.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print the checks as one JSON object.
    #[arg(long)]
    pub json: bool,
}

pub(super) fn doctor(a: &DoctorArgs) -> anyhow::Result<ExitCode> {
    let report = crate::doctor::run(a);
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        for c in &report.checks {
            writeln!(out, "{:<4}  {:<12}  {}", c.status.label(), c.id, c.message)?;
            if let Some(fix) = &c.fix {
                writeln!(out, "{:<4}  {:<12}  fix: {fix}", "", "")?;
            }
        }
        let problems = report
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .count();
        writeln!(
            out,
            "{} check(s), {} problem(s){}",
            report.checks.len(),
            problems,
            if problems == 0 {
                ": pushes will be gated"
            } else {
                ""
            }
        )?;
    }
    Ok(exit::ok_or_refused(report.ok))
}
