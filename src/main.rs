//! The `agentgate` binary: parse the command line, run, report, exit.

fn main() -> std::process::ExitCode {
    agentgate::cli::main()
}
