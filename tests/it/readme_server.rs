//! The README's server setup, followed as written. The shell block between the
//! `<!-- server-setup: begin -->` and `<!-- server-setup: end -->` markers of README.md is run
//! verbatim by bash as root, in a private mount namespace where `/etc` is an overlay, and
//! `/srv`, `/var/log` and `/usr/local` are empty: the paths it names are the real ones, the
//! user it creates and the files it writes vanish with the namespace. What the package would
//! have installed is put in place first: the binary as `/usr/local/bin/agentgate` (and its hook
//! build beside it), the shipped policy as `/etc/agentgate/policy.toml`. After the block, a
//! push as the Git server's user must be accepted and logged where the block said.

use crate::common::*;
use std::path::Path;

const BEGIN: &str = "<!-- server-setup: begin -->";
const END: &str = "<!-- server-setup: end -->";

/// The `sh` code block between the markers.
fn readme_block() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme
        .find(BEGIN)
        .expect("README.md has the server-setup markers");
    let end = readme[start..].find(END).expect("the end marker") + start;
    let section = &readme[start + BEGIN.len()..end];
    let code = section
        .split_once("```sh\n")
        .expect("a ```sh block between the markers")
        .1;
    code.split_once("\n```")
        .expect("the block's closing fence")
        .0
        .to_string()
}

fn available(program: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn readme_server_setup_works_as_written() {
    const TEST: &str = "readme_server_setup_works_as_written";
    if !require_root(TEST, "it runs the README's sudo steps in a mount namespace") {
        return;
    }
    for (program, package) in [
        ("sudo", "sudo"),
        ("unshare", "util-linux"),
        ("useradd", "passwd"),
    ] {
        if !available(program) {
            skip(TEST, &format!("{program} not found (Debian package {package}; scripts/install-test-deps.sh installs it)"));
            return;
        }
    }
    let block = readme_block();
    for step in [
        "agentgate keygen",
        "/var/log/agentgate",
        "agentgate install",
        "agentgate doctor",
    ] {
        assert!(
            block.contains(step),
            "the README's block lost its step {step:?}"
        );
    }
    let env = Env::new();
    let t = env.path();
    std::fs::write(t.join("readme.sh"), &block).unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/policy.toml");
    // Put in place what the package installs, hide the machine's /srv, /var/log and
    // /usr/local, run the block, then push as the Git server's user.
    let wrapper = format!(
        r#"set -eu
T={t}
mkdir -p "$T/ns"
mount -t tmpfs tmpfs "$T/ns"
mkdir "$T/ns/upper" "$T/ns/work"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/ns/upper,workdir=$T/ns/work" /etc
for d in /srv /var/log /usr/local; do mount -t tmpfs tmpfs "$d"; done
mkdir -p /usr/local/bin /usr/local/lib/agentgate /etc/agentgate
install -m 0755 {bin} /usr/local/bin/agentgate
install -m 0755 {bin} /usr/local/lib/agentgate/agentgate-hook
install -m 0644 {policy} /etc/agentgate/policy.toml
[ -d /run/sudo ] && mount -t tmpfs tmpfs /run/sudo
mkdir -p "$T/admin" && cd "$T/admin"
echo "--- the README's block"
bash -eux "$T/readme.sh"
echo "--- a push as the Git server's user"
W=/srv/git/w
sudo -u git git -c init.defaultBranch=main clone -q /srv/git/app.git "$W"
sudo -u git git -C "$W" -c user.name=Ada -c user.email=ada@example.com commit -q --allow-empty -m "First"
sudo -u git git -C "$W" push -q origin HEAD:refs/heads/main
test -s /var/log/agentgate/audit.jsonl
grep -q '"code":"no-agent-commits"' /var/log/agentgate/audit.jsonl
stat -c '%U' /srv/git/app.git/hooks/pre-receive | grep -qx git
grep -q "exec '/usr/local/lib/agentgate/agentgate-hook' pre-receive --config '/etc/agentgate/policy.toml'" /srv/git/app.git/hooks/pre-receive
echo "--- done"
"#,
        t = t.display(),
        bin = AGENTGATE,
        policy = policy.display(),
    );
    std::fs::write(t.join("wrapper.sh"), wrapper).unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "bash"])
        .arg(t.join("wrapper.sh"))
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env_remove("AGENTGATE_CONFIG")
        .env_remove("GIT_DIR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "the README's server setup failed:\n{text}"
    );
    assert!(text.contains("--- done"), "{text}");
    // doctor ran inside the block and passed (set -e), and said so.
    assert!(
        text.contains("problem(s): pushes will be gated") || text.contains("0 problem(s)"),
        "{text}"
    );
}
