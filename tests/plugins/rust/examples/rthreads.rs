//! A plugin that reads the host's thread table, as Falco's container and
//! k8smeta plugins read libsinsp's: on syscall events it looks up the
//! event's thread under `threads` (keyed by tid), reads static fields
//! (`comm`, `pid`, `cwd`), the first item of the `args` subtable, and a
//! field of its own it adds to the table (`rthreads_seen`), which its
//! parser raises on every event of the thread. A test compares these with
//! the host's own `proc.*` fields on the same events.

use std::ffi::{CStr, CString};
use std::ops::ControlFlow;
use std::sync::Arc;

use falco_plugin::anyhow::{self, Error};
use falco_plugin::base::Plugin;
use falco_plugin::extract::{field, ExtractFieldInfo, ExtractPlugin, ExtractRequest};
use falco_plugin::parse::{EventInput, ParseInput, ParsePlugin};
use falco_plugin::tables::import::{Entry, Field, Table, TableMetadata};
use falco_plugin::tables::{TableReader, TablesInput};
use falco_plugin::{extract_plugin, parse_plugin, plugin};
use peregrine_test_plugins::SyscallEvent;

type Arg = Entry<Arc<ArgMetadata>>;
type Args = Table<u64, Arg>;

#[derive(TableMetadata)]
#[entry_type(Arg)]
struct ArgMetadata {
    value: Field<CStr, Arg>,
}

type FdEntry = Entry<Arc<FdMetadata>>;
type Fds = Table<i64, FdEntry>;

#[derive(TableMetadata)]
#[entry_type(FdEntry)]
struct FdMetadata {
    name: Field<CStr, FdEntry>,
    fd: Field<i64, FdEntry>,
}

type Thread = Entry<Arc<ThreadMetadata>>;
type Threads = Table<i64, Thread>;

#[derive(TableMetadata)]
#[entry_type(Thread)]
struct ThreadMetadata {
    pid: Field<i64, Thread>,
    comm: Field<CStr, Thread>,
    cwd: Field<CStr, Thread>,
    args: Field<Args, Thread>,
    file_descriptors: Field<Fds, Thread>,
    #[custom]
    rthreads_seen: Field<u64, Thread>,
}

struct RThreads {
    threads: Threads,
}

impl Plugin for RThreads {
    const NAME: &'static CStr = c"rthreads";
    const PLUGIN_VERSION: &'static CStr = c"0.1.0";
    const DESCRIPTION: &'static CStr =
        c"Rust SDK reader and writer of the host's thread table, for Peregrine's tests";
    const CONTACT: &'static CStr = c"peregrine tests";
    type ConfigType = ();

    fn new(input: Option<&TablesInput>, _config: ()) -> Result<Self, Error> {
        let input = input.ok_or_else(|| anyhow::anyhow!("the host gave no tables input"))?;
        let threads: Threads = input.get_table(c"threads")?;
        Ok(RThreads { threads })
    }
}

impl RThreads {
    fn thread_of(
        &self,
        reader: &impl TableReader,
        event: &EventInput<SyscallEvent<'_>>,
    ) -> Result<Thread, Error> {
        let tid = event.event()?.0.metadata.tid;
        self.threads.get_entry(reader, &tid)
    }

    fn extract_comm(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        let thread = self.thread_of(req.table_reader, req.event)?;
        Ok(thread.get_comm(req.table_reader)?.to_owned())
    }

    fn extract_pid(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let thread = self.thread_of(req.table_reader, req.event)?;
        Ok(thread.get_pid(req.table_reader)? as u64)
    }

    fn extract_cwd(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        let thread = self.thread_of(req.table_reader, req.event)?;
        Ok(thread.get_cwd(req.table_reader)?.to_owned())
    }

    fn extract_arg0(&mut self, req: ExtractRequest<Self>) -> Result<CString, Error> {
        let thread = self.thread_of(req.table_reader, req.event)?;
        let arg = thread.get_args_by_key(req.table_reader, &0)?;
        Ok(arg.get_value(req.table_reader)?.to_owned())
    }

    fn extract_fd_names(&mut self, req: ExtractRequest<Self>) -> Result<Vec<CString>, Error> {
        let reader = req.table_reader;
        let thread = self.thread_of(reader, req.event)?;
        let fds = thread.get_file_descriptors(reader)?;
        let mut names = Vec::new();
        fds.iter_entries_mut(reader, |entry| {
            // An entry is found again by its key, and knows its number.
            let found = entry
                .get_fd(reader)
                .and_then(|fd| fds.get_entry(reader, &fd));
            if let Ok(name) = found.and_then(|e| Ok(e.get_name(reader)?.to_owned())) {
                names.push(name);
            }
            ControlFlow::Continue(())
        })?;
        Ok(names)
    }

    fn extract_seen(&mut self, req: ExtractRequest<Self>) -> Result<u64, Error> {
        let thread = self.thread_of(req.table_reader, req.event)?;
        thread.get_rthreads_seen(req.table_reader)
    }
}

impl ExtractPlugin for RThreads {
    type Event<'a> = SyscallEvent<'a>;
    type ExtractContext = ();
    const EXTRACT_FIELDS: &'static [ExtractFieldInfo<Self>] = &[
        field("rthreads.comm", &Self::extract_comm).with_description("the thread's comm"),
        field("rthreads.pid", &Self::extract_pid).with_description("the thread's pid"),
        field("rthreads.cwd", &Self::extract_cwd).with_description("the thread's cwd"),
        field("rthreads.arg0", &Self::extract_arg0)
            .with_description("the first item of the thread's args subtable"),
        field("rthreads.fd_names", &Self::extract_fd_names)
            .with_description("the names in the thread's file_descriptors subtable"),
        field("rthreads.seen", &Self::extract_seen)
            .with_description("events of the thread parsed so far (a field this plugin adds)"),
    ];
}

impl ParsePlugin for RThreads {
    type Event<'a> = SyscallEvent<'a>;

    fn parse_event(
        &mut self,
        event: &EventInput<Self::Event<'_>>,
        parse_input: &ParseInput,
    ) -> anyhow::Result<()> {
        // A thread the host does not know yet (its first event) is skipped.
        let Ok(thread) = self.thread_of(&parse_input.reader, event) else {
            return Ok(());
        };
        let seen = thread.get_rthreads_seen(&parse_input.reader)?;
        thread.set_rthreads_seen(&parse_input.writer, &(seen + 1))
    }
}

plugin!(RThreads);
parse_plugin!(RThreads);
extract_plugin!(RThreads);
