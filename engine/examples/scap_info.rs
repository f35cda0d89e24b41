//! Prints a capture's tables: machine, interfaces, users, processes, fds
//! and the number of events.
//!
//! Usage: scap_info FILE

use peregrine_engine::scap::Capture;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: scap_info FILE")?;
    let mut cap = Capture::open(&path)?;
    println!("format {}.{}", cap.major_version, cap.minor_version);
    if let Some(m) = &cap.machine {
        println!(
            "machine {} cpus={} memory={} max_pid={}",
            m.hostname, m.num_cpus, m.memory_size_bytes, m.max_pid
        );
    }
    for i in &cap.interfaces {
        println!(
            "interface {} {} mask {} bcast {} speed {}",
            i.name, i.addr, i.netmask, i.bcast, i.linkspeed
        );
    }
    println!("users {} groups {}", cap.users.len(), cap.groups.len());
    println!("threads {} fds {}", cap.processes.len(), cap.fds.len());
    let mut count = 0u64;
    let mut events = cap.events();
    while let Some(ev) = events.next() {
        ev?;
        count += 1;
    }
    println!("events {count}");
    Ok(())
}
