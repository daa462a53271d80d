//! Help texts and the commands messages suggest. Every argument and option says what it is,
//! every command has an example, and examples fit an 80-column terminal. Every command that a
//! message, a fix or a help text suggests (`agentgate install --repo {}`) parses as written,
//! placeholders filled in: collected from the string literals of the source, and from every
//! help text, so a new message cannot suggest a command that is not there or lacks a required
//! argument.

use clap::CommandFactory as _;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::common::AGENTGATE;

/// Every visible command, with its path (`["audit", "verify"]`).
fn commands() -> Vec<(Vec<String>, clap::Command)> {
    fn walk(path: Vec<String>, c: &clap::Command, out: &mut Vec<(Vec<String>, clap::Command)>) {
        // clap's own `help` subcommands are not ours to document.
        for sub in c
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let mut p = path.clone();
            p.push(sub.get_name().to_string());
            out.push((p.clone(), sub.clone()));
            walk(p, sub, out);
        }
    }
    let mut cmd = agentgate::cli::Cli::command();
    cmd.build();
    let mut out = vec![(vec![], cmd.clone())];
    walk(vec![], &cmd, &mut out);
    out
}

#[test]
fn every_argument_and_option_has_a_description() {
    let mut missing = Vec::new();
    for (path, c) in commands() {
        if c.get_about().is_none() && !path.is_empty() {
            missing.push(format!("agentgate {}: the command", path.join(" ")));
        }
        for a in c.get_arguments() {
            let id = a.get_id().as_str();
            if a.is_hide_set() || id == "help" || id == "version" {
                continue;
            }
            if a.get_help().is_none() && a.get_long_help().is_none() {
                missing.push(format!("agentgate {}: {id}", path.join(" ")));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no description:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_command_has_an_example_that_fits_80_columns() {
    let mut problems = Vec::new();
    for (path, c) in commands() {
        let name = format!("agentgate {}", path.join(" "));
        // Commands that only group others (`audit`, `policy`) show their subcommands' examples.
        let leaf = c.get_subcommands().next().is_none();
        let after = c
            .get_after_help()
            .or(c.get_after_long_help())
            .map(|s| s.to_string())
            .unwrap_or_default();
        if leaf && !after.to_lowercase().contains("example") {
            problems.push(format!("{name}: no example"));
        }
        // Examples are the indented lines: clap wraps prose to the terminal, but an example
        // broken by wrapping no longer runs when pasted.
        for line in after.lines().filter(|l| l.starts_with(' ')) {
            if line.chars().count() > 80 {
                problems.push(format!("{name}: {} columns: {line}", line.chars().count()));
            }
        }
        let help = c.term_width(80).render_long_help().to_string();
        for line in help.lines().filter(|l| !l.starts_with("Usage:")) {
            if line.chars().count() > 80 {
                problems.push(format!(
                    "{name} --help: {} columns: {line}",
                    line.chars().count()
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Split a command as a POSIX shell would (quotes, backslashes); enough for suggestions.
fn shell_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                any = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                any = true;
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '\\' => {
                if let Some(c) = chars.next() {
                    cur.push(c);
                    any = true;
                }
            }
            c if c.is_whitespace() => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Each `agentgate SUBCOMMAND ...` in `text`, cut where the command ends (a backtick, a quote,
/// `&&`, `;`, a `#` comment, the end of the line), placeholders filled in: `{...}` and
/// `<...>` and ALL-CAPS words stand for a value; `...` is never a complete command.
fn suggestions(text: &str, subcommands: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    // Shell line continuations join an example's lines.
    let joined = text.replace("\\\n", " ");
    let mut rest = joined.as_str();
    while let Some(i) = rest.find("agentgate ") {
        let after = &rest[i + "agentgate ".len()..];
        rest = after;
        let first = after
            .split(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .next()
            .unwrap_or("");
        if !subcommands.contains(first) {
            continue;
        }
        let end = ["`", "&&", ";", " # ", " | ", " > ", "\n", " (", ", "]
            .iter()
            .filter_map(|t| after.find(t))
            .min()
            .unwrap_or(after.len());
        let mut cmd = after[..end].trim().trim_end_matches(['.', ':']);
        // A parenthesised remark's closing parenthesis is not part of the command.
        if cmd.ends_with(')') && cmd.matches('(').count() < cmd.matches(')').count() {
            cmd = &cmd[..cmd.len() - 1];
        }
        out.push(cmd.to_string());
    }
    out
}

/// Fill placeholders; None when the suggestion is not a command one can run (`...`).
fn fill(cmd: &str) -> Option<Vec<String>> {
    // `$(git rev-parse main)` stands for a value too; doctor's `{target}` is where to install.
    let mut cmd = cmd.replace("{target}", "--repo {repo}");
    while let Some(i) = cmd.find("$(") {
        let j = cmd[i..].find(')').map(|j| i + j + 1).unwrap_or(cmd.len());
        cmd.replace_range(i..j, "{x}");
    }
    let mut s = String::new();
    let mut depth = 0;
    for c in cmd.chars() {
        match c {
            '{' | '<' => {
                // Glued to a word (`--note{}`), a placeholder is an optional suffix: dropped.
                if depth == 0 && (s.is_empty() || s.ends_with(char::is_whitespace)) {
                    s.push_str("PLACEHOLDER");
                }
                depth += 1;
            }
            '}' | '>' if depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            c => s.push(c),
        }
    }
    let mut words = Vec::new();
    for w in shell_words(&s) {
        if w.contains("...") && !w.starts_with("sha256:") {
            return None;
        }
        let caps = w.len() > 1
            && w.chars()
                .all(|c| c.is_ascii_uppercase() || c == '-' || c == '_' || c == '.');
        if caps || w.contains("PLACEHOLDER") {
            words.push(w.replace("PLACEHOLDER", "x").to_lowercase());
        } else {
            words.push(w);
        }
    }
    Some(words)
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            source_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text inside the string literals of a Rust file, up to its unit tests.
fn string_literals(text: &str) -> Vec<(usize, String)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    let mut lit: Option<(usize, String)> = None;
    for (n, line) in code.lines().enumerate() {
        if lit.is_none() && line.trim_start().starts_with("//") {
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (&mut lit, c) {
                (None, '"') => lit = Some((n + 1, String::new())),
                (Some(_), '"') => out.extend(lit.take()),
                (Some((_, s)), '\\') => {
                    if let Some(e) = chars.next() {
                        match e {
                            'n' => s.push('\n'),
                            // A line continuation: the next line's indentation is dropped.
                            _ => s.push(e),
                        }
                    } else {
                        // `\` at the end of the line: the literal goes on, leading blanks
                        // of the next line skipped.
                        s.push(' ');
                    }
                }
                (Some((_, s)), c) => s.push(c),
                (None, '\'') => {
                    // A char literal like '"' must not open a string.
                    let _ = chars.next_if(|&c| c == '"' || c == '\\');
                }
                _ => {}
            }
        }
        if let Some((_, s)) = &mut lit {
            s.push('\n');
        }
    }
    out
}

/// The command line parses (asking for help or the version counts as parsing).
fn parses(argv: impl Iterator<Item = String>) -> Result<(), String> {
    use clap::error::ErrorKind;
    match <agentgate::cli::Cli as clap::Parser>::try_parse_from(argv) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e) => Err(e.to_string().lines().next().unwrap_or_default().to_string()),
    }
}

#[test]
fn every_suggested_command_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let all = commands();
    let subcommands: BTreeSet<String> = all
        .iter()
        .filter(|(p, _)| p.len() == 1)
        .map(|(p, _)| p[0].clone())
        .collect();

    // Where suggestions come from: the source's string literals, the shims, every help text.
    let mut texts: Vec<(String, String)> = Vec::new();
    let mut files = Vec::new();
    source_files(&root.join("src"), &mut files);
    for krate in std::fs::read_dir(root.join("crates")).unwrap() {
        let src = krate.unwrap().path().join("src");
        if src.is_dir() {
            source_files(&src, &mut files);
        }
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (line, lit) in string_literals(&text) {
            let at = format!("{}:{line}", f.strip_prefix(root).unwrap().display());
            texts.push((at, lit));
        }
    }
    // What the shims say to a pusher: their echo lines, inside the quotes.
    for f in std::fs::read_dir(root.join("hooks")).unwrap() {
        let f = f.unwrap().path();
        for (n, line) in std::fs::read_to_string(&f).unwrap().lines().enumerate() {
            if let Some(said) = line.trim_start().strip_prefix("echo \"") {
                let said = said.split('"').next().unwrap_or_default();
                texts.push((format!("{}:{}", f.display(), n + 1), said.to_string()));
            }
        }
    }
    for (path, c) in &all {
        let name = format!("agentgate {} --help", path.join(" "));
        let help = c.clone().render_long_help().to_string();
        // The usage synopsis is not a suggestion.
        let help: Vec<&str> = help.lines().filter(|l| !l.starts_with("Usage:")).collect();
        texts.push((name, help.join("\n")));
    }

    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for (at, text) in &texts {
        for cmd in suggestions(text, &subcommands) {
            let Some(words) = fill(&cmd) else {
                problems.push(format!("{at}: `agentgate {cmd}` is not a complete command"));
                continue;
            };
            let argv = std::iter::once("agentgate".to_string()).chain(words.iter().cloned());
            if let Err(e) = parses(argv) {
                problems.push(format!("{at}: `agentgate {cmd}`: {e}"));
            }
            checked.insert(cmd);
        }
    }
    assert!(
        checked.len() > 20,
        "too few suggestions found ({}): is the scan broken?",
        checked.len()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // And each suggested command's --help runs, from the binary itself.
    let mut paths: BTreeSet<Vec<String>> = BTreeSet::new();
    for cmd in &checked {
        let words = fill(cmd).unwrap();
        let mut p = vec![words[0].clone()];
        if let Some((_, c)) = all.iter().find(|(path, _)| path == &p) {
            if let Some(sub) = words.get(1) {
                if c.find_subcommand(sub).is_some() {
                    p.push(sub.clone());
                }
            }
        }
        paths.insert(p);
    }
    for p in paths {
        let out = std::process::Command::new(AGENTGATE)
            .args(&p)
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "agentgate {} --help failed",
            p.join(" ")
        );
    }
}

/// `gate` has no `--prompt`: an encrypted key without a passphrase names only the option gate
/// has (it used to say "use --password-env VAR or --prompt").
#[cfg(feature = "gate")]
#[test]
fn gate_names_only_its_own_passphrase_option() {
    let sb = crate::common::Sandbox::new();
    sb.keygen("gate", &["--password-env", "PW"], &[("PW", "pw")]);
    let out = sb.run(
        &[
            "gate",
            "--key",
            "gate.key",
            "--repo",
            "repo",
            "--build",
            "true",
            "--test",
            "true",
            "--artifact",
            "a.txt",
            "--danger-no-sandbox",
        ],
        &[],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("give its passphrase with --password-env VAR"),
        "{err}"
    );
    assert!(!err.contains("--prompt"), "{err}");
    let words: Vec<&str> =
        "agentgate gate --key k --build true --test true --artifact a --password-env VAR"
            .split(' ')
            .map(|w| if w == "VAR" { "PW" } else { w })
            .collect();
    assert!(parses(words.iter().map(|w| w.to_string())).is_ok());
}

/// doctor on a repository whose git config is broken gives git's reason and git's own check
/// of that file, not "not a git repository" (which sends the admin looking for another path).
#[test]
fn doctor_on_a_broken_repository_config_names_git_s_reason() {
    let env = crate::common::Env::new();
    let repo = env.path().join("app.git");
    let r = repo.to_str().unwrap();
    env.git_ok(env.path(), &["init", "-q", "--bare", "-b", "main", r]);
    let good = std::fs::read_to_string(repo.join("config")).unwrap();
    std::fs::write(repo.join("config"), format!("{good}[broken\n")).unwrap();
    let out = env.agentgate(env.path(), &["doctor", "--repo", r]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(!text.contains("not a git repository"), "{text}");
    assert!(!text.contains("class="), "{text}");
    assert!(text.contains("missing ']'"), "git's reason: {text}");
    assert!(
        text.contains(&format!("git --git-dir {r} config --list")),
        "{text}"
    );
}
