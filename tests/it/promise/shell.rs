//! One bash process per model run, fed the run's script an operation at a time: the variables
//! the script sets (`$C5`, `$T2`) live in it, and what it ran is exactly the repro script.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Stdio};

use crate::common::{Env, AGENTGATE};

pub struct Shell {
    child: Child,
    stdin: Option<ChildStdin>,
    out: BufReader<ChildStdout>,
    n: u64,
}

impl Shell {
    /// A bash with `W` (the run's directory) and `AG` (the binary under test) set.
    pub fn start(env: &Env, w: &Path) -> Shell {
        let mut child = env
            .cmd("bash")
            .env_remove("BASH_ENV")
            .env_remove("ENV")
            .env("W", w)
            .env("AG", AGENTGATE)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash");
        let stdin = child.stdin.take().expect("bash stdin");
        let out = BufReader::new(child.stdout.take().expect("bash stdout"));
        let mut sh = Shell {
            child,
            stdin: Some(stdin),
            out,
            n: 0,
        };
        // Everything the script prints comes back on one pipe, in order.
        sh.run("exec 2>&1");
        sh
    }

    /// Run `text`; returns its exit status and output. Commands never read the shell's own
    /// input (they would eat the next operation).
    pub fn run(&mut self, text: &str) -> (i32, String) {
        self.n += 1;
        let mark = format!("@@agentgate-model-{}@@", self.n);
        let stdin = self.stdin.as_mut().expect("shell is open");
        write!(
            stdin,
            "{{\n{text}\n}} </dev/null\nprintf '\\n{mark} %d\\n' $?\n"
        )
        .and_then(|()| stdin.flush())
        .expect("write to bash");
        let mut output = String::new();
        loop {
            let mut line = String::new();
            let n = self.out.read_line(&mut line).expect("read from bash");
            assert!(
                n > 0,
                "bash exited while running:\n{text}\noutput:\n{output}"
            );
            if let Some(rest) = line.strip_prefix(&mark) {
                let rc = rest.trim().parse().expect("exit status");
                // The newline printf put before the mark.
                if output.ends_with('\n') {
                    output.pop();
                }
                return (rc, output);
            }
            output.push_str(&line);
        }
    }

    /// The value of a shell variable.
    pub fn var(&mut self, name: &str) -> String {
        let (rc, out) = self.run(&format!("printf '%s' \"${{{name}:-}}\""));
        assert_eq!(rc, 0);
        out.trim().to_string()
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
