//! `peregrine run`: the ptrace tracer's records read back with the engine's
//! own parser, its exit status, and the workload's safety when Peregrine
//! is stopped or killed in the middle.

use peregrine_engine::event::{EventView, ParamType};
use peregrine_tests::webhook;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Like [`peregrine_tests::peregrine_with_ptrace`], for attaching to a process that is not
/// the tracer's child: Yama's ptrace_scope 1 allows that to root only.
fn peregrine_with_attach() -> Option<PathBuf> {
    let binary = peregrine_tests::peregrine_with_ptrace()?;
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(0);
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if scope >= 2 || (scope == 1 && !root) {
        eprintln!("skipped: Yama ptrace_scope {scope} forbids attaching to a non-child here");
        return None;
    }
    Some(binary)
}

fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Rules with no rule in them, for runs that look at peregrine itself.
const NO_RULES: &str = "- list: nothing\n  items: []\n";

/// `rules` written to DIR/rules.yaml, then `peregrine run -r` it, in
/// `dir`, on `command`: its whole output.
fn run_traced(peregrine: &Path, dir: &Path, rules: &str, command: &[&str]) -> Output {
    let path = dir.join("rules.yaml");
    std::fs::write(&path, rules).unwrap();
    Command::new(peregrine)
        .current_dir(dir)
        .args(["run", "-r"])
        .arg(&path)
        .arg("--")
        .args(command)
        .output()
        .unwrap()
}

/// Every record of a records file.
fn records(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 26 <= bytes.len() {
        let len = u32::from_ne_bytes(bytes[at + 16..at + 20].try_into().unwrap()) as usize;
        assert!(len >= 26 && at + len <= bytes.len(), "torn record at {at}");
        out.push(&bytes[at..at + len]);
        at += len;
    }
    assert_eq!(at, bytes.len(), "trailing bytes");
    out
}

/// The byte width scap gives a numeric parameter type.
fn width(ty: ParamType) -> Option<usize> {
    use ParamType::*;
    Some(match ty {
        Int8 | Uint8 | SigType | Flags8 | Enumflags8 => 1,
        Int16 | Uint16 | Port | Flags16 | Enumflags16 | SyscallId => 2,
        Int32 | Uint32 | Flags32 | Enumflags32 | Uid | Gid | Mode => 4,
        Int64 | Uint64 | Errno | Fd | Pid | RelTime | AbsTime => 8,
        _ => return Option::None,
    })
}

fn str_param<'a>(ev: &EventView<'a>, name: &str) -> String {
    ev.param_named(name)
        .map(|p| String::from_utf8_lossy(p.as_bytes_str()).into_owned())
        .unwrap_or_default()
}

fn int_param(ev: &EventView<'_>, name: &str) -> i64 {
    ev.param_named(name)
        .and_then(|p| p.as_i64())
        .unwrap_or(i64::MIN)
}

#[test]
fn traced_records_have_the_module_layouts_and_the_workload_values() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("ptrace-records");
    let recs = dir.join("records.bin");
    let script = "mkdir d && : > d/f && chmod 600 d/f && chown 0:0 d/f 2>/dev/null; \
                  ln -s f d/l && ln d/f d/h && mv d/h d/h2 && rm d/l d/h2 d/f && rmdir d && \
                  cat /etc/hostname > out; exit 5";
    let status = Command::new(&peregrine)
        .current_dir(&dir)
        .args(["ptrace-tracer", "--records-file"])
        .arg(&recs)
        .args(["--", "sh", "-c", script])
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(5),
        "the command's exit status comes back"
    );
    let bytes = std::fs::read(&recs).unwrap();
    let all = records(&bytes);
    assert!(all.len() > 20, "only {} records", all.len());

    let events = schema_checked(&bytes);
    let names: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e.name(),
                if e.event_type % 2 == 0 { ">" } else { "<" }
            )
        })
        .collect();
    let seen = |n: &str| names.iter().any(|x| x == n);
    assert!(seen("execve<"), "{names:?}");
    assert!(seen("openat>") && seen("openat<"), "{names:?}");
    assert!(seen("procexit>"), "{names:?}");
    assert!(
        names
            .iter()
            .any(|x| x.starts_with("clone") || x.starts_with("fork") || x.starts_with("vfork")),
        "{names:?}"
    );
    // coreutils pick the *at forms or the old ones: either is fine.
    for family in [
        &["mkdir<", "mkdirat<"][..],
        &["unlink<", "unlinkat<"],
        &["rmdir<", "unlinkat<"],
        &["symlink<", "symlinkat<"],
        &["link<", "linkat<"],
        &["rename<", "renameat<", "renameat2<"],
        &["chmod<", "fchmodat<", "fchmod<"],
    ] {
        assert!(
            family.iter().any(|n| seen(n)),
            "none of {family:?} in {names:?}"
        );
    }

    let root = events
        .iter()
        .find(|e| e.name() == "execve" && e.event_type % 2 == 1 && str_param(e, "comm") == "sh")
        .expect("the shell's execve exit");
    let root_tid = root.tid as i64;
    assert_eq!(int_param(root, "res"), 0);
    assert_eq!(str_param(root, "exe"), "sh");
    assert_eq!(int_param(root, "tid"), root_tid);
    assert_eq!(int_param(root, "pid"), root_tid);
    // The path the tracer found sh at, on PATH.
    assert!(str_param(root, "filename").ends_with("/sh"));
    assert_eq!(
        str_param(root, "cwd"),
        dir.canonicalize().unwrap().to_string_lossy()
    );
    assert!(root
        .param_named("args")
        .unwrap()
        .as_bytes_str()
        .starts_with(b"-c"));
    assert!(!str_param(root, "trusted_exepath").is_empty());

    // cat's execve: its parent is the shell (fork child's ptid), args the file.
    let cat = events
        .iter()
        .find(|e| e.name() == "execve" && e.event_type % 2 == 1 && str_param(e, "comm") == "cat")
        .expect("cat's execve exit");
    assert_eq!(int_param(cat, "ptid"), root_tid);
    assert_eq!(
        cat.param_named("args").unwrap().bytes,
        b"/etc/hostname\0",
        "args after argv[0], NUL-separated"
    );
    // The shell's open of `out` for the redirection: its enter and exit.
    let out_open = events
        .iter()
        .find(|e| e.name() == "openat" && e.event_type % 2 == 1 && str_param(e, "name") == "out")
        .expect("openat exit of out");
    assert!(int_param(out_open, "fd") >= 0);
    let flags = out_open.param_named("flags").unwrap().as_u64().unwrap();
    assert_eq!(
        flags & 0b111,
        0b110,
        "O_WRONLY|O_CREAT in scap bits: {flags:#x}"
    );
    assert_ne!(flags & (1 << 14), 0, "O_F_CREATED: out did not exist");
    assert!(out_open.param_named("ino").unwrap().as_u64().unwrap() > 0);
    // The root's exit status in its procexit.
    let exit = events
        .iter()
        .find(|e| e.name() == "procexit" && e.tid as i64 == root_tid)
        .expect("the shell's procexit");
    assert_eq!(int_param(exit, "ret"), 5);
    assert_eq!(
        std::fs::read(dir.join("out")).unwrap(),
        std::fs::read("/etc/hostname").unwrap()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks every record of a records file against the schema: parameter
/// count and the width of every numeric parameter. Returns the events.
fn schema_checked(bytes: &[u8]) -> Vec<EventView<'_>> {
    records(bytes)
        .into_iter()
        .map(|raw| {
            let ev = EventView::parse(raw).unwrap_or_else(|e| panic!("unparsable record: {e}"));
            assert_eq!(
                ev.nparams as usize,
                ev.info().params.len(),
                "{} has the schema's parameter count",
                ev.name()
            );
            for p in ev.params() {
                if let Some(w) = width(p.ty()) {
                    assert_eq!(p.bytes.len(), w, "{}.{} width", ev.name(), p.name());
                }
            }
            ev
        })
        .collect()
}

#[test]
fn every_event_kind_the_tracer_writes_has_the_schema_layout() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("skipped: gcc is not installed (needed to build pgtrigger)");
        return;
    }
    let dir = work_dir("ptrace-kinds");
    let t = dir.join("pgtrigger");
    let gcc = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&t)
        .arg(peregrine_tests::repo_root().join("tests/guest/rules/pgtrigger.c"))
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Actions that fail (not root, no module) still make their events.
    let script = format!(
        "T={t}; P={port}\n\
         $T serve $P & S=$!; sleep 0.3\n\
         $T connect $P; $T listen 0; $T raw; $T setns; $T unshare\n\
         $T creat c; $T write w; $T append w; $T symlink w s; $T link w l; $T rename l l2\n\
         $T chmod w 600; $T chown w; $T unlink s; $T ptrace\n\
         exec 3>&1; exec 3>&-; kill -0 $$\n\
         mount -t tmpfs none ./no-such-dir 2>/dev/null; umount ./no-such-dir 2>/dev/null\n\
         insmod ./no-such.ko 2>/dev/null; setpriv --reuid=$(id -u) --regid=$(id -g) --clear-groups true 2>/dev/null\n\
         kill $S; wait\n",
        t = t.display()
    );
    let recs = dir.join("records.bin");
    let status = Command::new(&peregrine)
        .current_dir(&dir)
        .args(["ptrace-tracer", "--records-file"])
        .arg(&recs)
        .args(["--", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.code().is_some());
    let bytes = std::fs::read(&recs).unwrap();
    let events = schema_checked(&bytes);
    let kinds: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}{}",
                e.name(),
                if e.event_type % 2 == 0 { ">" } else { "<" }
            )
        })
        .collect();
    for want in [
        "socket<",
        "bind<",
        "listen<",
        "connect>",
        "connect<",
        "accept<",
        "setns<",
        "unshare<",
        "creat>",
        "creat<",
        "symlink<",
        "link<",
        "rename<",
        "chmod<",
        "chown<",
        "unlink<",
        "ptrace<",
        "dup2<",
        "kill<",
        "close<",
        "procexit>",
    ] {
        // accept: glibc's accept() is accept4 on some builds.
        let alt = want.replace("accept<", "accept4<");
        assert!(
            kinds.contains(want) || kinds.contains(&alt),
            "no {want} among {kinds:?}"
        );
    }
    for (tool, want) in [
        ("mount", "mount<"),
        ("umount", "umount2<"),
        ("setpriv", "setresuid<"),
    ] {
        let present = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            !present || kinds.contains(want),
            "no {want} among {kinds:?}"
        );
    }
    // The connect exit's tuple: 127.0.0.1 to our server's port.
    let connect = events
        .iter()
        .find(|e| e.name() == "connect" && e.event_type % 2 == 1 && int_param(e, "res") == 0)
        .expect("a successful connect exit");
    let tuple = connect.param_named("tuple").unwrap().bytes;
    assert_eq!(tuple.len(), 13, "IPv4 tuple");
    assert_eq!(tuple[0], 2, "scap AF_INET");
    assert_eq!(&tuple[7..11], &[127, 0, 0, 1]);
    assert_eq!(u16::from_ne_bytes([tuple[11], tuple[12]]), port);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn run_exits_with_the_commands_status_and_raises_alerts() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("ptrace-exit");
    let out = run_traced(
        &peregrine,
        &dir,
        "- rule: Traced Open\n  desc: t\n  condition: evt.type in (open, openat) and evt.dir = < and evt.rawres >= 0 and fd.name endswith /marker\n  output: opened %fd.name by %proc.name parent %proc.pname\n  priority: WARNING\n",
        &["sh", "-c", "cat marker 2>/dev/null; : > marker; cat marker; exit 7"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let alerts: Vec<&str> = stdout.lines().filter(|l| l.contains("opened ")).collect();
    // The failed first cat opens nothing; the redirection and the second cat do.
    assert_eq!(alerts.len(), 2, "{stdout}");
    assert!(alerts[0].contains("by sh"), "{}", alerts[0]);
    assert!(alerts[1].contains("by cat parent sh"), "{}", alerts[1]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 undecodable"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// The tracer and the reader are two processes on one stderr, and each
/// prints its summary when the records pipe ends: the two lines come whole
/// (a CI run once saw them interleaved piece by piece) and the tracer's first.
#[test]
fn the_tracer_and_reader_summaries_come_whole_and_in_order() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("ptrace-summaries");
    let tracer = regex::Regex::new(
        r"^ptrace: \d+ syscalls stopped, \d+ events written, \d+ threads followed$",
    )
    .unwrap();
    let reader = regex::Regex::new(r"^Traced events: \d+ received, 0 undecodable$").unwrap();
    for round in 0..12 {
        let out = run_traced(&peregrine, &dir, NO_RULES, &["true"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {stderr}");
        let at = |re: &regex::Regex| stderr.lines().position(|l| re.is_match(l));
        let (Some(t), Some(r)) = (at(&tracer), at(&reader)) else {
            panic!("round {round}: a summary line is missing or torn:\n{stderr}");
        };
        assert!(
            t < r,
            "round {round}: the reader's summary came first:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts `peregrine run` on a loop that counts to 60 into a file, then
/// signals Peregrine once the loop is under way; the loop must still
/// count to the end, every step succeeding.
fn workload_survives(signal: &str) {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir(&format!("ptrace-{signal}"));
    let log = dir.join("count");
    // Each step execs, opens and forks: all filtered syscalls.
    let script = format!(
        "i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo $i >> {log}; \
         cat {log} > /dev/null || echo FAILED-$i >> {log}; sleep 0.03; done; echo done >> {log}",
        log = log.display()
    );
    let mut run = Command::new(&peregrine)
        .args([
            "run",
            "-o",
            "stdout_output.enabled=false",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    while lines(&log).len() < 10 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the loop never got going"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &run.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = run.wait().unwrap();
    let killed_at = lines(&log).len();
    while lines(&log).last().map(String::as_str) != Some("done") {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the workload did not finish: {:?}",
            lines(&log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut want: Vec<String> = (1..=60).map(|i| i.to_string()).collect();
    want.push("done".into());
    assert_eq!(lines(&log), want, "every step ran and succeeded");
    assert!(
        killed_at < 61,
        "peregrine was signalled mid-run ({killed_at} lines then)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_to_peregrine_lets_the_workload_finish() {
    workload_survives("TERM");
}

#[test]
fn sigkill_to_peregrine_lets_the_workload_finish() {
    workload_survives("KILL");
}

/// The state line of /proc/PID/status and its TracerPid.
fn trace_state(pid: u32) -> (String, String) {
    trace_state_of(pid, pid)
}

#[test]
fn attach_reports_then_detaches_on_sigterm() {
    let Some(peregrine) = peregrine_with_attach() else {
        return;
    };
    let dir = work_dir("ptrace-attach");
    let marker = dir.join("attach-marker");
    let done = dir.join("stop");
    let script = format!(
        "while [ ! -e {done} ]; do cat {m} > /dev/null 2>&1; sleep 0.05; done; echo finished > {m}.end",
        done = done.display(),
        m = marker.display()
    );
    let mut workload = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Attached Exec\n  desc: t\n  condition: evt.type = execve and evt.dir = < and proc.name = cat\n  output: exec of cat %proc.cmdline\n  priority: WARNING\n",
    )
    .unwrap();
    let run = Command::new(&peregrine)
        .args(["run", "-U", "-r"])
        .arg(&rules)
        .args(["--attach", &workload.id().to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while trace_state(workload.id()).1 == "0" {
        assert!(start.elapsed() < Duration::from_secs(30), "never attached");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("exec of cat cat"), "{stdout}");
    // Detached: no tracer, not stopped; it still runs and ends normally.
    let start = Instant::now();
    loop {
        let (state, tracer) = trace_state(workload.id());
        if tracer == "0" {
            assert!(
                !state.starts_with('t') && !state.starts_with('T'),
                "{state}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still traced by {tracer}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&done, "").unwrap();
    assert!(workload.wait().unwrap().success());
    assert_eq!(
        std::fs::read_to_string(dir.join("attach-marker.end")).unwrap(),
        "finished\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const THREADED_C: &str = r#"
#include <pthread.h>
#include <fcntl.h>
#include <unistd.h>
static const char *stop;
static void *work(void *arg)
{
	(void)arg;
	while (access(stop, F_OK) != 0) {
		int fd = open("/proc/self/stat", O_RDONLY);
		if (fd >= 0)
			close(fd);
		usleep(10000);
	}
	return 0;
}
int main(int argc, char **argv)
{
	pthread_t t[4];
	int i;
	stop = argv[1];
	for (i = 0; i < 4; i++)
		pthread_create(&t[i], 0, work, 0);
	for (i = 0; i < 4; i++)
		pthread_join(t[i], 0);
	return 0;
}
"#;

#[test]
fn attach_to_a_threaded_process_follows_and_frees_every_thread() {
    let Some(peregrine) = peregrine_with_attach() else {
        return;
    };
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("skipped: gcc is not installed");
        return;
    }
    let dir = work_dir("ptrace-threads");
    std::fs::write(dir.join("threads.c"), THREADED_C).unwrap();
    let gcc = Command::new("gcc")
        .args(["-O2", "-pthread", "-o"])
        .arg(dir.join("threads"))
        .arg(dir.join("threads.c"))
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let stop = dir.join("stop");
    let mut workload = Command::new(dir.join("threads"))
        .arg(&stop)
        .spawn()
        .unwrap();
    let pid = workload.id();
    let tasks = || -> Vec<u32> {
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| e.file_name().to_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let start = Instant::now();
    while tasks().len() < 5 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "threads never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let rules = dir.join("rules.yaml");
    std::fs::write(
        &rules,
        "- rule: Thread Open\n  desc: t\n  condition: evt.type = openat and evt.dir = < and fd.name = /proc/self/stat\n  output: open by tid %thread.tid\n  priority: WARNING\n",
    )
    .unwrap();
    let run = Command::new(&peregrine)
        .args(["run", "-U", "-r"])
        .arg(&rules)
        .args(["--attach", &pid.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !tasks().iter().all(|&t| trace_state_of(pid, t).1 != "0") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not every thread attached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(600));
    Command::new("kill")
        .args(["-TERM", &run.id().to_string()])
        .status()
        .unwrap();
    let out = run.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Opens from each of the four worker threads were seen.
    let tids: std::collections::BTreeSet<&str> = stdout
        .lines()
        .filter_map(|l| l.split("open by tid ").nth(1))
        .collect();
    assert_eq!(tids.len(), 4, "{stdout}");
    let start = Instant::now();
    while !tasks().iter().all(|&t| trace_state_of(pid, t).1 == "0") {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a thread stayed traced"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&stop, "").unwrap();
    assert!(workload.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// State and TracerPid of one thread.
fn trace_state_of(pid: u32, tid: u32) -> (String, String) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    (field("State:"), field("TracerPid:"))
}

#[test]
fn attach_detaches_when_peregrine_is_killed() {
    let Some(peregrine) = peregrine_with_attach() else {
        return;
    };
    let dir = work_dir("ptrace-attach-kill");
    let done = dir.join("stop");
    let end = dir.join("end");
    let script = format!(
        "while [ ! -e {done} ]; do cat /etc/hostname > /dev/null; sleep 0.05; done; echo finished > {end}",
        done = done.display(),
        end = end.display()
    );
    let mut workload = Command::new("sh").args(["-c", &script]).spawn().unwrap();
    let mut run = Command::new(&peregrine)
        .args(["run", "-o", "stdout_output.enabled=false"])
        .args(["--attach", &workload.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while trace_state(workload.id()).1 == "0" {
        assert!(start.elapsed() < Duration::from_secs(30), "never attached");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SIGKILL: no chance to clean up; the tracer learns it from its
    // parent-death signal and detaches on its own.
    run.kill().unwrap();
    run.wait().unwrap();
    let start = Instant::now();
    loop {
        let (state, tracer) = trace_state(workload.id());
        if tracer == "0" {
            assert!(
                !state.starts_with('t') && !state.starts_with('T'),
                "{state}"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still traced by {tracer}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(&done, "").unwrap();
    assert!(workload.wait().unwrap().success());
    assert_eq!(std::fs::read_to_string(&end).unwrap(), "finished\n");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unprivileged_user_traces_with_no_new_privs() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let can_drop = Command::new("sh")
        .args([
            "-c",
            "[ \"$(id -u)\" = 0 ] && command -v setpriv && setpriv --reuid=65534 --regid=65534 --clear-groups true",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_drop {
        eprintln!("skipped: needs root and setpriv to run the tracer as nobody");
        return;
    }
    // The binary must be reachable by nobody: the target dir may not be.
    let dir = work_dir("ptrace-nobody");
    let binary = dir.join("peregrine");
    std::fs::copy(&peregrine, &binary).unwrap();
    let out_file = dir.join("out");
    Command::new("chmod")
        .arg("0777")
        .arg(&dir)
        .status()
        .unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&binary)
        .args([
            "ptrace-tracer",
            "--records-file",
            "/dev/null",
            "--",
            "sh",
            "-c",
        ])
        .arg(format!(
            "id -u > {o}; grep NoNewPrivs /proc/self/status >> {o}; exit 4",
            o = out_file.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&out_file).unwrap();
    assert!(text.starts_with("65534\n"), "{text}");
    // Without CAP_SYS_ADMIN the filter can only come with no_new_privs.
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Syscalls with pointers no one can read, which the tracer must survive
/// and still describe.
const BAD_POINTERS_C: &str = r#"
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void)
{
	syscall(SYS_openat, AT_FDCWD, (char *)1, O_RDONLY);
	syscall(SYS_open, (char *)-1, O_RDONLY | O_CREAT, 0600);
	syscall(SYS_openat2, AT_FDCWD, "/nonexistent-pg", (void *)-1, 24);
	syscall(SYS_connect, 0, (void *)-8, 100);
	syscall(SYS_bind, 0, (void *)-8, 100);
	syscall(SYS_rename, (char *)-5, (char *)-6);
	syscall(SYS_linkat, AT_FDCWD, (char *)-5, AT_FDCWD, (char *)8, 0);
	syscall(SYS_mount, (char *)-1, (char *)-1, (char *)-1, 0, (void *)0);
	syscall(SYS_init_module, (void *)-1, 100, (char *)-1);
	syscall(SYS_clone3, (void *)-1, 88);
	syscall(SYS_execve, (char *)8, (char **)16, (char **)0);
	syscall(SYS_execve, "/nonexistent-pg", (char **)-1, (char **)0);
	syscall(SYS_ptrace, 2 /* PTRACE_PEEKDATA */, 1, (void *)-1, (void *)-1);
	return 0;
}
"#;

#[test]
fn unreadable_pointers_give_empty_parameters_not_a_crash() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    if Command::new("gcc").arg("--version").output().is_err() {
        eprintln!("skipped: gcc is not installed");
        return;
    }
    let dir = work_dir("ptrace-badptr");
    std::fs::write(dir.join("bad.c"), BAD_POINTERS_C).unwrap();
    let gcc = Command::new("gcc")
        .args(["-O0", "-o"])
        .arg(dir.join("bad"))
        .arg(dir.join("bad.c"))
        .output()
        .unwrap();
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    let recs = dir.join("records.bin");
    let status = Command::new(&peregrine)
        .args(["ptrace-tracer", "--records-file"])
        .arg(&recs)
        .arg("--")
        .arg(dir.join("bad"))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the workload ran to its end");
    let bytes = std::fs::read(&recs).unwrap();
    let events = schema_checked(&bytes);
    let exits = |name: &str| {
        events
            .iter()
            .filter(|e| e.name() == name && e.event_type % 2 == 1)
            .count()
    };
    for name in [
        "openat", "open", "openat2", "connect", "bind", "rename", "linkat", "mount",
    ] {
        assert!(exits(name) >= 1, "no {name} exit");
    }
    // execve: the first exec (the program itself) and two failing ones.
    assert_eq!(exits("execve"), 3);
    let bad_open = events
        .iter()
        .find(|e| e.name() == "openat" && e.event_type % 2 == 1 && int_param(e, "fd") == -14)
        .expect("the openat of pointer 1 failed with EFAULT");
    assert!(bad_open.param_named("name").unwrap().bytes.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// tests/guest/rules/pgtrigger.c built into `dir`; None (said) without gcc.
fn pgtrigger(dir: &Path) -> Option<PathBuf> {
    let trigger = dir.join("pgtrigger");
    let gcc = match Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(&trigger)
        .arg(peregrine_tests::repo_root().join("tests/guest/rules/pgtrigger.c"))
        .output()
    {
        Ok(gcc) => gcc,
        Err(e) => {
            eprintln!("skipped: gcc cannot run ({e}), pgtrigger is not built");
            return None;
        }
    };
    assert!(
        gcc.status.success(),
        "{}",
        String::from_utf8_lossy(&gcc.stderr)
    );
    Some(trigger)
}

/// An open whose path another thread rewrote while it waited in the
/// kernel is counted in /metrics (the merge's other counts beside it):
/// the race is itself a sign of someone walking around a rule.
#[test]
fn an_open_named_from_its_enter_is_counted_in_metrics() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("ptrace-toctou-metrics");
    let Some(trigger) = pgtrigger(&dir) else {
        return;
    };
    let rules = dir.join("rules.yaml");
    std::fs::write(&rules, NO_RULES).unwrap();
    let (fifo, decoy, done) = (dir.join("fifo"), dir.join("decoy"), dir.join("done"));
    let script = format!(
        "{t} toctou-read {f} {d} {t} && while [ ! -e {done} ]; do sleep 0.05; done",
        t = trigger.display(),
        f = fifo.display(),
        d = decoy.display(),
        done = done.display()
    );
    let mut run = Command::new(&peregrine)
        .args(["run", "-r"])
        .arg(&rules)
        .args(webhook::WEBSERVER_ON_LOOPBACK)
        .args(["--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = webhook::stderr_lines(&mut run);
    let web = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("the webserver never said where it listens");
        if let Some(address) = webhook::webserver_address(&line) {
            break format!("{address}/metrics");
        }
    };
    let wanted = "\nfalcosecurity_peregrine_merge_opens_named_from_enter_total 1\n";
    let deadline = Instant::now() + Duration::from_secs(30);
    let metrics = loop {
        let (status, body) = webhook::get(&web);
        if (status == 200 && body.contains(wanted)) || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    std::fs::write(&done, "").unwrap();
    let status = run.wait().unwrap();
    assert!(metrics.contains(wanted), "{metrics}");
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_merge_exits_without_enter_total "),
        "{metrics}"
    );
    // Every enter the tracer wrote (opens, the writer's exec) met its exit.
    assert!(
        metrics.contains("\nfalcosecurity_peregrine_merge_enters_without_exit_total 0\n"),
        "{metrics}"
    );
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A connect whose address another thread rewrites while the call waits
/// in the kernel (pgtrigger toctou-connect: a listener with a full accept
/// queue holds the SYN back): the fd is named from the kernel's peer, as
/// the module names it, not from the decoy the exit reads in memory.
#[test]
fn a_connect_whose_address_is_rewritten_is_named_from_the_kernels_peer() {
    let Some(peregrine) = peregrine_tests::peregrine_with_ptrace() else {
        return;
    };
    let dir = work_dir("ptrace-toctou-connect");
    let Some(trigger) = pgtrigger(&dir) else {
        return;
    };
    let port = 20_000 + std::process::id() % 20_000;
    let decoy = port + 1;
    let out = run_traced(
        &peregrine,
        &dir,
        "- rule: Inet Connect\n  desc: t\n  condition: evt.type = connect and fd.typechar = 4\n  output: connected to %fd.rip:%fd.rport addr %evt.arg.addr\n  priority: WARNING\n",
        &[
            &trigger.display().to_string(),
            "toctou-connect",
            &port.to_string(),
            &decoy.to_string(),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let connects: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("connected to"))
        .collect();
    assert_eq!(connects.len(), 2, "{stdout}");
    for line in &connects {
        assert!(
            line.contains(&format!("connected to 127.0.0.1:{port} ")),
            "{line}"
        );
    }
    // The second connect's address was rewritten: the exit read the decoy.
    assert!(
        connects[1].ends_with(&format!("addr 127.0.0.1:{decoy}")),
        "the race did not happen: {}",
        connects[1]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
