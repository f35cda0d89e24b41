//! The writer: captures copied through reader and writer read back the
//! same with our reader and with sysdig.

mod common;

use common::{kit_captures, sysdig_available};

use peregrine_engine::scap::tables::fd_type;
use peregrine_engine::scap::{
    copy_capture, Capture, FdEntry, FdInfo, MachineInfo, ProcEntry, UserEntry, Writer,
};
use std::path::{Path, PathBuf};
use std::process::Command;

const SYSDIG_FORMAT: &str =
    "*%evt.num %evt.time %evt.type %evt.dir %thread.tid %proc.pid %proc.name \
%proc.cmdline %proc.pname %user.name %group.gid %fd.num %fd.name %fd.type %evt.args";

fn sysdig_print(path: &Path) -> String {
    let out = Command::new("sysdig")
        .env("TZ", "UTC")
        .arg("-r")
        .arg(path)
        .arg("-p")
        .arg(SYSDIG_FORMAT)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sysdig could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("peregrine-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn copies_read_back_identically() {
    let Some(paths) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found; no captures to copy");
        return;
    };
    for path in paths {
        let mut orig = Capture::open(&path).unwrap();
        let bytes = copy_capture(&mut orig, Vec::new()).unwrap();
        // The copy consumed the events: read them again.
        let mut orig = Capture::open(&path).unwrap();
        let mut copy = Capture::from_bytes(bytes).unwrap();
        assert_eq!(orig.machine, copy.machine);
        assert_eq!(orig.processes, copy.processes, "{}", path.display());
        assert_eq!(orig.fds, copy.fds, "{}", path.display());
        assert_eq!(orig.users, copy.users);
        assert_eq!(orig.interfaces, copy.interfaces);
        assert_eq!(
            orig.interface_blocks.is_empty(),
            orig.interfaces.is_empty(),
            "{}",
            path.display()
        );
        assert_eq!(orig.groups, copy.groups);
        let (mut a, mut b) = (orig.events(), copy.events());
        loop {
            let (x, y) = match (a.next(), b.next()) {
                (None, None) => break,
                (Some(x), Some(y)) => (x.unwrap(), y.unwrap()),
                (x, y) => panic!(
                    "{}: one capture ends first ({} / {})",
                    path.display(),
                    x.is_some(),
                    y.is_some()
                ),
            };
            assert_eq!(
                (x.num, x.ts, x.tid, x.cpu, x.event_type, x.nparams),
                (y.num, y.ts, y.tid, y.cpu, y.event_type, y.nparams)
            );
            for i in 0..x.nparams as usize {
                assert_eq!(
                    x.param_bytes(i),
                    y.param_bytes(i),
                    "{} event {} param {i}",
                    path.display(),
                    x.num
                );
            }
        }
    }
}

#[test]
fn sysdig_reads_copies_with_the_same_values() {
    let Some(paths) = kit_captures() else {
        println!("SKIP: ../shared/conformance not found; no captures to copy");
        return;
    };
    if !sysdig_available() {
        println!("SKIP: sysdig not installed; cannot check it reads our captures");
        return;
    }
    let mut lines = 0;
    for path in paths {
        let mut cap = Capture::open(&path).unwrap();
        let out = temp_path(path.file_name().unwrap().to_str().unwrap());
        copy_capture(
            &mut cap,
            std::io::BufWriter::new(std::fs::File::create(&out).unwrap()),
        )
        .unwrap();
        let want = sysdig_print(&path);
        let got = sysdig_print(&out);
        assert_eq!(
            want.lines().count(),
            got.lines().count(),
            "{}",
            path.display()
        );
        for (w, g) in want.lines().zip(got.lines()) {
            assert_eq!(w, g, "{}", path.display());
        }
        lines += want.lines().count();
        std::fs::remove_file(&out).unwrap();
    }
    assert!(lines > 1000, "only {lines} events compared");
}

/// Builds an open event (type 3, current layout) by hand.
fn open_exit_event(ts: u64, tid: u64, fd: i64, name: &str) -> Vec<u8> {
    let params: Vec<Vec<u8>> = vec![
        fd.to_le_bytes().to_vec(),
        [name.as_bytes(), b"\0"].concat(),
        1u32.to_le_bytes().to_vec(),
        0u32.to_le_bytes().to_vec(),
    ];
    let mut body = Vec::new();
    for p in &params {
        body.extend_from_slice(&(p.len() as u16).to_le_bytes());
    }
    for p in &params {
        body.extend_from_slice(p);
    }
    let mut ev = Vec::new();
    ev.extend_from_slice(&ts.to_le_bytes());
    ev.extend_from_slice(&tid.to_le_bytes());
    ev.extend_from_slice(&((26 + body.len()) as u32).to_le_bytes());
    ev.extend_from_slice(&3u16.to_le_bytes());
    ev.extend_from_slice(&(params.len() as u32).to_le_bytes());
    ev.extend_from_slice(&body);
    ev
}

#[test]
fn a_capture_built_from_scratch_reads_back() {
    let machine = MachineInfo {
        num_cpus: 2,
        hostname: "lab".into(),
        ..MachineInfo::default()
    };
    let proc_entry = ProcEntry {
        tid: 100,
        pid: 100,
        ptid: 1,
        sid: 100,
        vpgid: 100,
        comm: "cat".into(),
        exe: "cat".into(),
        exepath: "/usr/bin/cat".into(),
        args: vec!["/etc/shadow".into()],
        cwd: "/root".into(),
        uid: 0,
        vtid: 100,
        vpid: 100,
        loginuid: 1000,
        ..ProcEntry::default()
    };
    let fd = FdEntry {
        tid: 100,
        fd: 0,
        ino: 7,
        fd_type: fd_type::FILE,
        info: FdInfo::Named {
            name: "/dev/pts/0".into(),
        },
    };
    let mut w = Writer::new(Vec::new(), &machine).unwrap();
    w.write_users(
        &[UserEntry {
            uid: 0,
            gid: 0,
            name: "root".into(),
            homedir: "/root".into(),
            shell: "/bin/sh".into(),
        }],
        &[],
    )
    .unwrap();
    w.write_processes(std::slice::from_ref(&proc_entry))
        .unwrap();
    w.write_fds(100, &[&fd]).unwrap();
    let raw = open_exit_event(1_700_000_000_000_000_000, 100, 3, "/etc/shadow");
    let ev = peregrine_engine::event::EventView::parse(&raw).unwrap();
    w.write_event(&ev).unwrap();
    let bytes = w.finish().unwrap();

    let mut cap = Capture::from_bytes(bytes.clone()).unwrap();
    assert_eq!(cap.machine.as_ref().unwrap().hostname, "lab");
    assert_eq!(cap.processes, vec![proc_entry]);
    assert_eq!(cap.fds, vec![fd]);
    let mut events = cap.events();
    let ev = events.next().unwrap().unwrap();
    assert_eq!(
        ev.param_named("name").unwrap().as_str(),
        Some("/etc/shadow")
    );
    assert!(events.next().is_none());

    if sysdig_available() {
        let path = temp_path("scratch.scap");
        std::fs::write(&path, &bytes).unwrap();
        let out = Command::new("sysdig")
            .arg("-r")
            .arg(&path)
            .arg("-p")
            .arg("%evt.type %proc.name %proc.cmdline %fd.name %user.name")
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "open cat cat /etc/shadow /etc/shadow root"
        );
    } else {
        println!("SKIP (sysdig part): sysdig not installed");
    }
}
