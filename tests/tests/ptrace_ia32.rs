//! 32-bit programs under `peregrine run`: a static i386 binary's open,
//! connect, exec and socket options are reported as the x86-64 syscalls of
//! the same name (as Falco's driver translates ia32 calls), so they raise
//! the same alerts, with the same values, as the same program built for 64
//! bits: argv and envp (4-byte pointers), struct msghdr and iovec, and
//! struct timeval (4-byte longs) are read at the caller's layout. The i386 build needs Debian's
//! gcc-multilib (scripts/install-deps installs it).
//!
//! The outputs leave out what honestly differs between the builds: the
//! program's name, and getsockopt/setsockopt's optlen (sizeof(struct
//! timeval) is 8 on i386).

use std::path::{Path, PathBuf};
use std::process::Command;

const RULES: &str = r#"
- rule: Probe Open
  desc: t
  condition: evt.type in (open, openat) and fd.name = /etc/hostname and proc.name startswith pgia
  output: PROBE-OPEN %proc.name %fd.name
  priority: WARNING
- rule: Probe Connect
  desc: t
  condition: evt.type = connect and fd.rip = 127.0.0.1 and proc.name startswith pgia
  output: PROBE-CONNECT %proc.name %fd.rip %fd.rport
  priority: WARNING
- rule: Probe Exec
  desc: t
  condition: evt.type = execve and proc.name = true and proc.pname startswith pgia
  output: PROBE-EXEC %proc.name %proc.pname [%proc.cmdline] [%proc.args] [%proc.env]
  priority: WARNING
- rule: Probe Failed Exec
  desc: t
  condition: evt.type = execve and evt.dir = < and evt.res != SUCCESS and proc.name startswith pgia
  output: PROBE-EXECFAIL %evt.res [%evt.arg.args] [%evt.arg.env]
  priority: WARNING
- rule: Probe Send
  desc: t
  condition: evt.type in (sendto, sendmsg) and evt.dir = < and proc.name startswith pgia
  output: PROBE-SEND %evt.type %fd.l4proto %fd.sip %fd.sport %evt.arg.size [%evt.arg.data]
  priority: WARNING
- rule: Probe Sockopt
  desc: t
  condition: evt.type in (setsockopt, getsockopt) and proc.name startswith pgia
  output: PROBE-SOCKOPT %evt.type %evt.arg.level %evt.arg.optname %evt.arg.val
  priority: WARNING
"#;

fn build(dir: &Path, name: &str, m32: bool) -> Result<PathBuf, String> {
    let out = dir.join(name);
    let source = peregrine_tests::repo_root().join("tests/ia32/pgia.c");
    let mut gcc = Command::new("gcc");
    if m32 {
        gcc.arg("-m32");
    }
    let result = gcc
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&source)
        .output()
        .map_err(|e| format!("gcc: {e}"))?;
    if !result.status.success() {
        return Err(String::from_utf8_lossy(&result.stderr).into_owned());
    }
    Ok(out)
}

/// The probe alerts of one traced run, sorted.
fn probes(peregrine: &Path, rules: &Path, program: &Path, port: u16) -> Vec<String> {
    let out = Command::new(peregrine)
        .args(["run", "-r"])
        .arg(rules)
        .arg("--")
        .arg(program)
        .arg("/etc/hostname")
        .arg(port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}: {stdout}\n{}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut found: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.split_once("PROBE-").map(|(_, rest)| rest))
        // The program's own name differs (pgia32, pgia64): the rest must not.
        .map(|rest| rest.replace("pgia32", "pgia").replace("pgia64", "pgia"))
        .collect();
    found.sort();
    found
}

#[test]
fn a_32_bit_program_raises_the_alerts_of_its_64_bit_build() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("peregrine-ia32-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let wide = build(&dir, "pgia64", false).unwrap();
    let narrow = match build(&dir, "pgia32", true) {
        Ok(path) => path,
        Err(e) => {
            let first = e.lines().next().unwrap_or("");
            println!("SKIP: no static i386 build (gcc-multilib missing?): {first}");
            return;
        }
    };
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();

    let ours = probes(&peregrine, &rules, &narrow, port);
    let theirs = probes(&peregrine, &rules, &wide, port);
    // What the 64-bit build must show, so that an equal 32-bit output
    // means the values were read right, not that both were lost.
    for (probe, has) in [
        ("OPEN", "/etc/hostname"),
        ("CONNECT", "127.0.0.1"),
        ("EXEC", "alpha beta gamma delta"),
        ("EXEC", "PGIA_MARK=ia32-probe"),
        ("EXECFAIL", "two words"),
        ("EXECFAIL", "PGIA_FAILED=yes"),
        ("SEND sendmsg udp 127.0.0.1", "[hello ia32]"),
        ("SEND sendto udp 127.0.0.1", "[datagram]"),
        ("SOCKOPT setsockopt", "SO_RCVTIMEO"),
        ("SOCKOPT getsockopt", "SO_RCVTIMEO"),
        ("SOCKOPT setsockopt", "SO_SNDTIMEO"),
    ] {
        assert!(
            theirs
                .iter()
                .any(|p| p.starts_with(probe) && p.contains(has)),
            "64-bit build raised no {probe} with {has}: {theirs:?}"
        );
    }
    assert_eq!(
        ours, theirs,
        "32-bit alerts differ from the 64-bit build's (left: i386)"
    );
    drop(listener);
    let _ = std::fs::remove_dir_all(&dir);
}
