//! The `syscall` field source: Falco's `evt.*`, `proc.*`, `thread.*`,
//! `user.*`, `group.*`, `fd.*` and `container.*` fields over an event and
//! the state it was applied to.
//!
//! Names resolve once to a [`Field`] id (plus a parsed argument); extraction
//! is a match on the id, with no string lookup per event.

mod container_fields;
mod event_info;
mod extension;
mod extract;
mod list;
mod paths;
mod process_info;

use std::borrow::Cow;
use std::cell::OnceCell;

use crate::dns::DomainNames;
use crate::event::table;
use crate::event::EventView;
use crate::field::{FieldError, FieldInfo, FieldSource, FieldType, ResolvedField, StaticFields};
use crate::state::{Fd, State, Thread};
pub use extension::{ExtensionField, SyscallExtension};
pub use list::{DEPRECATED, FIELDS};

/// The syscall table's fields and the container plugin's, as listed.
static ALL_FIELDS: std::sync::LazyLock<Vec<FieldInfo>> = std::sync::LazyLock::new(|| {
    FIELDS
        .iter()
        .cloned()
        .chain(container_fields::infos())
        .collect()
});

/// One evaluation's input: an event and the state after applying it.
///
/// It also keeps what many fields of one event ask alike (the event's fd,
/// its thread, its open flags): worked out by the first field that asks,
/// then reused by the other fields of this event, the rules' conditions
/// and their outputs alike when both are given the same value.
///
/// That memo cannot serve a value of another event or of an older state:
/// it is keyed on nothing, it lives in this value and is born empty with
/// it ([`SyscallEvent::new`] is the only way to make one: the fields are
/// private, so the event or state cannot be swapped under the memo), and
/// this value borrows the state, so no event can be applied to the state
/// while it exists (the state has no interior mutability). One value per
/// event, dropped before the next event is applied: what the borrow
/// checker already enforces.
pub struct SyscallEvent<'e> {
    event: &'e EventView<'e>,
    state: &'e State,
    memo: Memo<'e>,
}

/// What the fields of one event share, each found at most once. Cells,
/// because fields are extracted through a shared reference (the rules
/// engine and the output formatter only ever hold `&SyscallEvent`).
#[derive(Default)]
struct Memo<'e> {
    fd: OnceCell<Option<(i64, Cow<'e, Fd>)>>,
    thread: OnceCell<&'e Thread>,
    open_flags: OnceCell<Option<u32>>,
}

/// The fd an event refers to: one of the state's (borrowed for the whole
/// evaluation) or one made up for this event (the file a failed open
/// tried, the peer a failed connect tried), kept in the event's memo.
#[derive(Clone, Copy)]
pub(crate) enum EventFd<'e, 'm> {
    State(&'e Fd),
    Made(&'m Fd),
}

impl std::ops::Deref for EventFd<'_, '_> {
    type Target = Fd;
    fn deref(&self) -> &Fd {
        match *self {
            EventFd::State(f) | EventFd::Made(f) => f,
        }
    }
}

impl<'e> SyscallEvent<'e> {
    /// The input of one event's evaluation, with an empty memo. Make one
    /// per event, after the state has applied it, and give the same one
    /// to the conditions and the outputs of that event.
    pub fn new(event: &'e EventView<'e>, state: &'e State) -> SyscallEvent<'e> {
        SyscallEvent {
            event,
            state,
            memo: Memo::default(),
        }
    }

    pub fn event(&self) -> &'e EventView<'e> {
        self.event
    }

    pub fn state(&self) -> &'e State {
        self.state
    }

    /// [`State::event_fd_info`] of the event, found once.
    pub(crate) fn fd_info(&self) -> Option<(i64, EventFd<'e, '_>)> {
        let (n, f) = self
            .memo
            .fd
            .get_or_init(|| self.state.event_fd_info(self.event))
            .as_ref()?;
        Some((
            *n,
            match f {
                Cow::Borrowed(f) => EventFd::State(f),
                Cow::Owned(f) => EventFd::Made(f),
            },
        ))
    }

    /// The event's thread, or libsinsp's made-up one when the state does
    /// not know it; found once.
    pub(crate) fn thread(&self) -> &'e Thread {
        self.memo.thread.get_or_init(|| {
            self.state
                .thread(self.event.tid as i64)
                .unwrap_or_else(|| crate::state::unknown_thread())
        })
    }

    /// The number of the event's fd: the one [`Self::fd_info`] found, else
    /// the one the event names though the state does not know it.
    pub(crate) fn fd_num(&self) -> Option<i64> {
        match self.fd_info() {
            Some((n, _)) => Some(n),
            None => self.state.event_fd(self.event),
        }
    }

    /// The open flags of an open-family exit (PPM encoding), found once.
    pub(crate) fn open_flags(&self) -> Option<u32> {
        *self
            .memo
            .open_flags
            .get_or_init(|| extract::open_flags(self))
    }
}

/// Identifiers of the fields, as stored in [`ResolvedField::id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Field {
    EvtNum,
    EvtTime,
    EvtRawTime,
    EvtType,
    EvtDir,
    EvtCpu,
    EvtRawRes,
    EvtRes,
    EvtFailed,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtArg,
    EvtArgIndex,
    EvtRawArg,
    EvtArgs,
    EvtBuffer,
    EvtCategory,
    ProcName,
    ProcExe,
    ProcExepath,
    ProcCmdline,
    ProcArgs,
    ProcPid,
    ProcPpid,
    ProcPname,
    ProcPcmdline,
    ProcPexe,
    ProcPexepath,
    ProcAname,
    ProcApid,
    ProcCwd,
    ProcTty,
    ProcSid,
    ProcVpgid,
    ProcIsExeWritable,
    ProcVpid,
    ThreadTid,
    ThreadVtid,
    UserName,
    UserUid,
    UserLoginUid,
    UserLoginName,
    UserHomedir,
    GroupName,
    GroupGid,
    FdNum,
    FdName,
    FdDirectory,
    FdFilename,
    FdTypechar,
    FdType,
    FdSip,
    FdCip,
    FdSport,
    FdCport,
    FdLip,
    FdRip,
    FdLport,
    FdRport,
    FdL4proto,
    FdNet,
    FdCnet,
    FdSnet,
    FdSockfamily,
    FdIsServer,
    EvtHostname,
    ProcAexepath,
    ProcSname,
    ProcEnv,
    ProcDuration,
    ProcPpidDuration,
    ProcVpgidName,
    ProcVpgidExe,
    ProcIsVpgidLeader,
    ProcIsSidLeader,
    ProcIsExeUpperLayer,
    ProcIsExeFromMemfd,
    ProcExeIno,
    ProcExeInoCtime,
    ProcExeInoMtime,
    ProcExeInoCtimeDurationProcStart,
    ThreadCapPermitted,
    ThreadCapEffective,
    ThreadCapInheritable,
    FdIp,
    FdPort,
    FdLnet,
    FdRnet,
    FdConnected,
    FdNameraw,
    FdNameChanged,
    FdSipName,
    FdCipName,
    FdLipName,
    FdRipName,
    EvtLatency,
    EvtLatencyS,
    EvtLatencyNs,
    EvtLatencyQuantized,
    EvtLatencyHuman,
    EvtDeltatime,
    EvtDeltatimeS,
    EvtDeltatimeNs,
    EvtOutputtime,
    EvtTypeIs,
    SyscallType,
    EvtInfo,
    EvtBuflen,
    EvtIsIo,
    EvtIsIoRead,
    EvtIsIoWrite,
    EvtIoDir,
    EvtIsWait,
    EvtWaitLatency,
    EvtIsSyslog,
    EvtCount,
    EvtCountError,
    EvtCountErrorFile,
    EvtCountErrorNet,
    EvtCountErrorMemory,
    EvtCountErrorOther,
    EvtCountExit,
    EvtCountProcinfo,
    EvtCountThreadinfo,
    EvtBuflenIn,
    EvtBuflenOut,
    EvtBuflenFile,
    EvtBuflenFileIn,
    EvtBuflenFileOut,
    EvtBuflenNet,
    EvtBuflenNetIn,
    EvtBuflenNetOut,
    EvtIsOpenCreate,
    EvtInfraDockerName,
    EvtInfraDockerContainerId,
    EvtInfraDockerContainerName,
    EvtInfraDockerContainerImage,
    EvtTimeS,
    EvtTimeIso8601,
    EvtDatetime,
    EvtDatetimeS,
    EvtRawtimeS,
    EvtRawtimeNs,
    EvtReltime,
    EvtReltimeS,
    EvtReltimeNs,
    EvtPluginname,
    EvtPlugininfo,
    EvtSource,
    EvtIsAsync,
    EvtAsynctype,
    FdUid,
    FdContainername,
    FdContainerdirectory,
    FdProto,
    FdCproto,
    FdSproto,
    FdLproto,
    FdRproto,
    FdDev,
    FdDevMajor,
    FdDevMinor,
    FdIno,
    FdTypes,
    FdIsUpperLayer,
    FdIsLowerLayer,
    FdlistNums,
    FdlistNames,
    FdlistCips,
    FdlistSips,
    FdlistCports,
    FdlistSports,
    ProcAexe,
    ProcAargs,
    ProcAcmdline,
    ProcAenv,
    ProcCmdnargs,
    ProcCmdlenargs,
    ProcExeline,
    ProcLoginshellid,
    ProcPvpid,
    ProcSidExe,
    ProcSidExepath,
    ProcVpgidExepath,
    ProcPgid,
    ProcPgidName,
    ProcPgidExe,
    ProcPgidExepath,
    ProcPidTs,
    ProcPpidTs,
    ProcIsExeLowerLayer,
    ProcIsPgidLeader,
    ProcExeInoCtimeDurationPidnsStart,
    ProcPidnsInitStartTs,
    ProcFdopencount,
    ProcFdlimit,
    ProcVmsize,
    ProcVmrss,
    ProcVmswap,
    ThreadPfmajor,
    ThreadPfminor,
    ThreadIsmain,
    ThreadNametid,
    ThreadExectime,
    ThreadTotexectime,
    ThreadCgroups,
    ThreadCgroup,
    ProcNthreads,
    ProcNchilds,
    ThreadVmsize,
    ThreadVmrss,
    ThreadVmsizeB,
    ThreadVmrssB,
    ProcStdinType,
    ProcStdoutType,
    ProcStderrType,
    ProcStdinName,
    ProcStdoutName,
    ProcStderrName,
    UserShell,
    EvtAbspath,
    EvtAbspathSrc,
    EvtAbspathDst,
    FsPathName,
    FsPathNameraw,
    FsPathSource,
    FsPathSourceraw,
    FsPathTarget,
    FsPathTargetraw,
    ProcFdusage,
    ThreadCpu,
    ThreadCpuUser,
    ThreadCpuSystem,
    EvtAround,
}

impl Field {
    fn from_id(id: u32) -> Option<Field> {
        list::FIELD_IDS.get(id as usize).copied()
    }
}

/// A parsed bracket argument or `.NAME` suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Arg {
    Name(String),
    Index(usize),
    /// Event type codes (`evt.type.is.NAME`: the enter and exit types).
    Types(Vec<u16>),
    /// A pattern of mount paths (`container.mount.dest[/var/run/*]`).
    Pattern(container_fields::Pattern),
}

/// The syscall field source. Holds the arguments of resolved fields and
/// the table of domain names the `fd.*ip.name` fields show. A clone shares
/// the table of names.
#[derive(Debug, Default, Clone)]
pub struct SyscallFields {
    args: Vec<Arg>,
    names: DomainNames,
    /// Fields from plugins that extract from syscall events.
    extension: Option<extension::Shared>,
    /// The names of the async events plugins may send into this source,
    /// each indexed under a key of its own.
    async_names: std::sync::Arc<[Box<str>]>,
    /// Falco's `buffer_format_base64`: `evt.args` shows I/O buffers in
    /// base64, in conditions as in outputs, as libsinsp's.
    buffer_base64: bool,
    /// Falco's `static_fields`.
    static_fields: StaticFields,
}

/// Field ids an extension resolved start here, above every built-in and
/// container field id.
const EXTENSION_BASE: u32 = 0x4000_0000;

impl SyscallFields {
    pub fn new() -> SyscallFields {
        SyscallFields::default()
    }

    /// A source whose `fd.*ip.name` fields read (and whose rules add
    /// their names to) the table `names`, shared with a resolver.
    pub fn with_domain_names(names: DomainNames) -> SyscallFields {
        SyscallFields {
            names,
            ..SyscallFields::default()
        }
    }

    /// This source with the async events plugins declare (their
    /// `get_async_events`): `evt.type = NAME` indexes rules under each
    /// name, as libsinsp maps async names to its async event type.
    pub fn with_async_events(mut self, names: &[String]) -> Self {
        let room = usize::from(ASYNC_KEY_UNDECLARED - ASYNC_KEY_BASE);
        self.async_names = names.iter().take(room).map(|n| n.as_str().into()).collect();
        self
    }

    /// The index key of the async event `name`, if a plugin declares it.
    fn async_key(&self, name: &str) -> Option<u16> {
        let at = self.async_names.iter().position(|n| &**n == name)?;
        // with_async_events keeps no more names than there are keys.
        Some(ASYNC_KEY_BASE + u16::try_from(at).ok()?)
    }

    /// This source with the fields of `extension` after its own: a name
    /// the built-in fields know stays theirs.
    pub fn with_extension(mut self, extension: std::sync::Arc<dyn SyscallExtension>) -> Self {
        self.extension = Some(extension::Shared(extension));
        self
    }

    /// The domain names rules compare `fd.*ip.name` with, and the table
    /// their resolved addresses go to (shared: resolve in the background
    /// and record the addresses on a clone).
    pub fn domain_names(&self) -> &DomainNames {
        &self.names
    }

    /// The built-in fields' (libsinsp's and the container plugin's) resolution.
    fn resolve_built_in(
        &mut self,
        name: &str,
        arg: Option<&str>,
    ) -> Result<ResolvedField, FieldError> {
        let bad = |problem: &str| FieldError::BadArgument {
            field: name.to_string(),
            problem: problem.to_string(),
        };
        // `evt.arg.fd` / `evt.rawarg.fd` carry their argument after a dot.
        for (prefix, field) in [
            ("evt.arg.", Field::EvtArg),
            ("evt.rawarg.", Field::EvtRawArg),
        ] {
            if let Some(pname) = name.strip_prefix(prefix) {
                if pname.is_empty() {
                    return Err(bad("needs a parameter name"));
                }
                let ty = if field == Field::EvtRawArg {
                    rawarg_type(pname).ok_or_else(|| FieldError::Unknown(name.to_string()))?
                } else {
                    FieldType::String
                };
                let a = self.store(Arg::Name(pname.to_string()));
                return Ok(ResolvedField {
                    id: field as u32,
                    arg: Some(a),
                    ty,
                    is_list: false,
                });
            }
        }
        // `evt.type.is.open` (or `.NUMBER`) names the event type after a dot.
        if let Some(type_name) = name.strip_prefix("evt.type.is.") {
            if arg.is_some() {
                return Err(bad("takes no argument"));
            }
            let codes: Vec<u16> = match type_name.parse::<u16>() {
                Ok(code) => vec![code],
                Err(_) => table::all_event_types()
                    .filter(|(_, e)| e.name == type_name)
                    .map(|(code, _)| code)
                    .collect(),
            };
            if codes.is_empty() {
                return Err(FieldError::Unknown(name.to_string()));
            }
            let a = self.store(Arg::Types(codes));
            return Ok(ResolvedField {
                id: Field::EvtTypeIs as u32,
                arg: Some(a),
                ty: FieldType::Uint,
                is_list: false,
            });
        }
        if let Some(found) = container_fields::resolve(name, arg) {
            let (id, ty, parsed) = found?;
            return Ok(ResolvedField {
                id,
                arg: parsed.map(|a| self.store(a)),
                ty,
                is_list: false,
            });
        }
        let (field, ty) =
            list::lookup(name).ok_or_else(|| FieldError::Unknown(name.to_string()))?;
        let mut resolved = ResolvedField {
            id: field as u32,
            arg: None,
            ty,
            is_list: false,
        };
        // fd.net, fd.ip, fd.port and fd.proto yield both ends of a socket
        // but are not lists: as libsinsp compares them, a condition holds
        // when either end matches (`!=`: when neither does), so `in`
        // needs one end in the set, not both.
        match field {
            Field::EvtArg | Field::EvtRawArg => {
                let a = arg
                    .ok_or_else(|| bad("needs a parameter name, as in evt.arg.fd or evt.arg[0]"))?;
                let parsed = match a.parse::<usize>() {
                    Ok(i) => Arg::Index(i),
                    Err(_) => Arg::Name(a.to_string()),
                };
                if field == Field::EvtRawArg {
                    if let Arg::Name(n) = &parsed {
                        resolved.ty = rawarg_type(n)
                            .ok_or_else(|| FieldError::Unknown(format!("{name}.{n}")))?;
                    }
                }
                if matches!(parsed, Arg::Index(_)) && field == Field::EvtArg {
                    resolved.id = Field::EvtArgIndex as u32;
                }
                resolved.arg = Some(self.store(parsed));
            }
            Field::ProcEnv => {
                if let Some(a) = arg {
                    resolved.arg = Some(self.store(Arg::Name(a.to_string())));
                }
            }
            Field::ProcAname
            | Field::ProcApid
            | Field::ProcAexepath
            | Field::ProcAexe
            | Field::ProcAargs
            | Field::ProcAcmdline => {
                let level = match arg.filter(|a| !a.is_empty()) {
                    Some(a) => {
                        ancestor_level(a).ok_or_else(|| bad("takes a numeric ancestor level"))?
                    }
                    None => None,
                };
                // Without a level the field gives every ancestor's value,
                // but it is no list field: libsinsp compares each ancestor
                // with the operator and a match of one is a match, so
                // `in` asks whether any ancestor is in the set.
                if let Some(n) = level {
                    resolved.arg = Some(self.store(Arg::Index(n)));
                }
            }
            Field::ProcArgs | Field::FdTypes => match arg.filter(|a| !a.is_empty()) {
                Some(a) => {
                    let n = a.parse::<usize>().map_err(|_| bad("takes a number"))?;
                    resolved.arg = Some(self.store(Arg::Index(n)));
                }
                None => resolved.is_list = field == Field::FdTypes,
            },
            Field::ProcAenv => {
                if let Some(a) = arg.filter(|a| !a.is_empty()) {
                    let parsed = match a.parse::<usize>() {
                        Ok(n) => Arg::Index(n),
                        Err(_) => Arg::Name(a.to_string()),
                    };
                    resolved.arg = Some(self.store(parsed));
                }
            }
            Field::EvtAround => {
                arg.and_then(|a| a.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        bad("needs a time in nanoseconds, as in evt.around[1404996934793590564]")
                    })?;
            }
            Field::ThreadCgroup => {
                let a = arg
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| bad("needs a cgroup controller, as in thread.cgroup[cpu]"))?;
                resolved.arg = Some(self.store(Arg::Name(a.to_string())));
            }
            Field::EvtTypeIs => {
                return Err(bad(
                    "needs an event type after a dot, as in evt.type.is.open",
                ))
            }
            _ => {
                if arg.is_some() {
                    return Err(bad("takes no argument"));
                }
            }
        }
        Ok(resolved)
    }

    fn store(&mut self, a: Arg) -> u32 {
        if let Some(i) = self.args.iter().position(|x| *x == a) {
            return i as u32;
        }
        self.args.push(a);
        (self.args.len() - 1) as u32
    }

    fn arg(&self, f: &ResolvedField) -> Option<&Arg> {
        self.args.get(f.arg? as usize)
    }
}

/// Index keys of generic events start here, above every event type, one
/// per system call code (see [`FieldSource::event_types_named`]).
const GENERIC_KEY_BASE: u16 = 0x8000;

/// Index keys of async events, one per declared name, below the generic
/// keys and above every event type; an undeclared name has the last one,
/// which no rule's `evt.type` names.
const ASYNC_KEY_BASE: u16 = 0x7000;
const ASYNC_KEY_UNDECLARED: u16 = GENERIC_KEY_BASE - 1;

/// The level in `proc.aname[N]` and its kin, read as libsinsp reads it
/// (a C `%d`: an optional sign, then digits and nothing else, in 32
/// bits). None when it is no such number; Some(None) for -1, which is
/// libsinsp's "no level" (every ancestor); another negative level is the
/// 32-bit unsigned number libsinsp walks up to, which no process has.
fn ancestor_level(arg: &str) -> Option<Option<usize>> {
    let digits = arg.strip_prefix(['+', '-']).unwrap_or(arg);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i32 = arg.parse().ok()?;
    Some(match n {
        -1 => None,
        n => Some(n as u32 as usize),
    })
}

/// Generic events (a syscall without an event type of its own) are the
/// first two types, enter and exit.
fn is_generic(ev: &EventView<'_>) -> bool {
    ev.event_type < 2
}

/// The field type `evt.rawarg.NAME` has: that of the first parameter of
/// that name in the schema.
fn rawarg_type(name: &str) -> Option<FieldType> {
    use crate::event::ParamType as P;
    let p = table::all_event_types()
        .flat_map(|(_, e)| e.params.iter())
        .find(|p| p.name == name)?;
    let ty = p.param_type();
    Some(match ty {
        t if t.is_numeric() && t.is_signed() => FieldType::Int,
        t if t.is_numeric() => FieldType::Uint,
        P::ByteBuf => FieldType::Bytes,
        P::Ipv4Addr | P::Ipv6Addr | P::IpAddr => FieldType::Ip,
        _ => FieldType::String,
    })
}

impl FieldSource for SyscallFields {
    type Event<'e> = SyscallEvent<'e>;

    fn name(&self) -> &'static str {
        "syscall"
    }

    /// Ancestor fields without an index print as the ancestors' values
    /// separated by spaces (one value with several parts, not a list), and
    /// `proc.apid` as the process's own pid, as libsinsp's outputs.
    fn resolve_output(
        &mut self,
        name: &str,
        arg: Option<&str>,
    ) -> Result<ResolvedField, FieldError> {
        // I/O buffers print as the driver's bytes, rendered by the output
        // (dots or base64), where conditions compare text or raw bytes;
        // the types below say which (see extract, EvtArg and EvtBuffer).
        if name.starts_with("evt.arg.") || name == "evt.arg" {
            let mut resolved = self.resolve(name, arg)?;
            if resolved.id == Field::EvtArg as u32 || resolved.id == Field::EvtArgIndex as u32 {
                resolved.ty = FieldType::Bytes;
            }
            return Ok(resolved);
        }
        if name == "evt.buffer" {
            let mut resolved = self.resolve(name, arg)?;
            resolved.ty = FieldType::String;
            return Ok(resolved);
        }
        if arg.filter(|a| !a.is_empty()).is_none() {
            match name {
                "proc.apid" => return self.resolve(name, Some("0")),
                "proc.aname" | "proc.aexe" | "proc.aexepath" | "proc.acmdline" | "proc.aargs" => {
                    let mut resolved = self.resolve(name, None)?;
                    resolved.is_list = false;
                    return Ok(resolved);
                }
                _ => {}
            }
        }
        self.resolve(name, arg)
    }

    fn resolve(&mut self, name: &str, arg: Option<&str>) -> Result<ResolvedField, FieldError> {
        match self.resolve_built_in(name, arg) {
            Err(FieldError::Unknown(unknown)) => {
                let Some(found) = self.extension.as_ref().and_then(|e| e.0.resolve(name, arg))
                else {
                    return Err(FieldError::Unknown(unknown));
                };
                let field = found?;
                let id = EXTENSION_BASE
                    .checked_add(field.id)
                    .ok_or_else(|| FieldError::Unknown(name.to_string()))?;
                Ok(ResolvedField {
                    id,
                    arg: None,
                    ty: field.ty,
                    is_list: field.is_list,
                })
            }
            other => other,
        }
    }

    fn extract<'e>(
        &self,
        field: &ResolvedField,
        event: &Self::Event<'e>,
        out: &mut Vec<crate::field::Value<'e>>,
    ) {
        if field.id >= EXTENSION_BASE {
            if let Some(extension) = &self.extension {
                extension.0.extract(field.id - EXTENSION_BASE, event, out);
            }
            return;
        }
        if field.id >= container_fields::ID_BASE {
            container_fields::extract(field.id, self.arg(field), event, out);
            return;
        }
        let Some(f) = Field::from_id(field.id) else {
            return;
        };
        if !extract::event_only(f, event.event, out) && !extract::hot(f, event, out) {
            let rendering = extract::Rendering {
                names: &self.names,
                buffer_base64: self.buffer_base64,
            };
            extract::extract(f, self.arg(field), field.ty, &rendering, event, out);
        }
    }
    fn set_buffer_base64(&mut self, on: bool) {
        self.buffer_base64 = on;
    }

    fn static_fields(&mut self) -> Option<&mut StaticFields> {
        Some(&mut self.static_fields)
    }

    /// libsinsp prints `evt.buffer` as the text of the data parameter in
    /// the buffer format, then renders that text as a buffer again: in
    /// base64, the data is encoded twice.
    fn renders_buffer_twice(&self, field: &ResolvedField) -> bool {
        field.id == Field::EvtBuffer as u32 && field.ty == FieldType::String
    }

    fn each_value_alone(&self, field: &ResolvedField) -> bool {
        field.arg.is_none()
            && matches!(
                Field::from_id(field.id),
                Some(
                    Field::ProcAname
                        | Field::ProcApid
                        | Field::ProcAexepath
                        | Field::ProcAexe
                        | Field::ProcAargs
                        | Field::ProcAcmdline
                )
            )
    }

    fn literals_compared(&mut self, field: &ResolvedField, literals: &[&str]) {
        let named = matches!(
            Field::from_id(field.id),
            Some(Field::FdSipName | Field::FdCipName | Field::FdLipName | Field::FdRipName)
        );
        if named {
            for name in literals {
                self.names.want(name);
            }
        }
    }

    fn event_types_named(&self, name: &str) -> Option<Vec<u16>> {
        let mut types = table::event_types_named(name);
        // A syscall without its own event type (in this or an older driver)
        // arrives as a generic event that evt.type shows by its name: it is
        // indexed under a key of its own per syscall code, so a generic
        // clock_gettime is not checked against every rule on any syscall.
        types.extend(
            table::syscall_codes(name)
                .filter(|&code| code != 0 && code < GENERIC_KEY_BASE)
                .map(|code| GENERIC_KEY_BASE + code),
        );
        types.extend(self.async_key(name));
        (!types.is_empty()).then_some(types)
    }

    fn event_type(&self, event: &Self::Event<'_>) -> Option<u16> {
        let ev = event.event;
        if let Some(name) = ev.async_name() {
            return Some(self.async_key(name).unwrap_or(ASYNC_KEY_UNDECLARED));
        }
        if is_generic(ev) {
            let code = ev.param(0).and_then(|p| p.as_u64()).unwrap_or(0);
            if code != 0 && code < u64::from(GENERIC_KEY_BASE) {
                return Some(GENERIC_KEY_BASE + code as u16);
            }
        }
        Some(ev.event_type)
    }

    fn fields(&self) -> &[FieldInfo] {
        &ALL_FIELDS
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn generic_events_are_the_first_two_types() {
        let named: Vec<u16> = crate::event::table::all_event_types()
            .filter(|(_, i)| i.name == "syscall")
            .map(|(t, _)| t)
            .collect();
        assert_eq!(named, [0, 1]);
    }
}
