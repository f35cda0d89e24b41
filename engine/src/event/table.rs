//! The event schema: for each event type number its name, direction,
//! category, flags and parameters. Captures written by older drivers carry
//! fewer parameters for the same type number; parameters are only ever
//! appended, so an event with `n` parameters is decoded with the first `n`
//! entries of its type's list.

use super::table_data::EVENTS;

/// One parameter of an event type.
#[derive(Debug)]
pub struct ParamInfo {
    pub name: &'static str,
    /// A `PT_*` code; see [`ParamType`].
    pub ty: u8,
    /// A `PF_*` print format code (0 none, 1 dec, 2 hex, 6 oct...).
    pub fmt: u8,
    /// Names of flag bits or enum values, for rendering.
    pub names: Option<&'static [(&'static str, u64)]>,
}

/// A set of type codes as bits, for tests on the raw code that read no
/// `ParamType` (every integer a parameter read goes through them).
const fn code_bits(codes: &[u8]) -> u64 {
    let mut bits = 0u64;
    let mut i = 0;
    while i < codes.len() {
        bits |= 1 << codes[i];
        i += 1;
    }
    bits
}

/// The codes of the types [`ParamType::is_numeric`] accepts.
const NUMERIC_CODES: u64 = code_bits(&[
    1, 2, 3, 4, 5, 6, 7, 8, 11, 14, 15, 18, 19, 20, 21, 22, 23, 24, 25, 28, 29, 30, 31, 32, 34, 42,
    44, 45, 46,
]);
/// The codes of the types [`ParamType::is_signed`] accepts.
const SIGNED_CODES: u64 = code_bits(&[1, 2, 3, 4, 11, 14, 15]);
/// The codes of Errno, Fd and Pid: a first parameter of these types is a
/// syscall's result.
const RESULT_CODES: u64 = code_bits(&[11, 14, 15]);

impl ParamInfo {
    pub fn param_type(&self) -> ParamType {
        ParamType::from_code(self.ty)
    }

    /// `self.param_type().is_numeric()`, from the code alone.
    #[inline]
    pub fn is_numeric(&self) -> bool {
        self.ty < 64 && (NUMERIC_CODES >> self.ty) & 1 != 0
    }

    /// `self.param_type().is_signed()`, from the code alone.
    #[inline]
    pub fn is_signed(&self) -> bool {
        self.ty < 64 && (SIGNED_CODES >> self.ty) & 1 != 0
    }

    /// Whether the type is Errno, Fd or Pid, from the code alone.
    #[inline]
    pub fn is_result_type(&self) -> bool {
        self.ty < 64 && (RESULT_CODES >> self.ty) & 1 != 0
    }
}

/// One event type.
#[derive(Debug)]
pub struct EventInfo {
    pub name: &'static str,
    /// `EC_*` bits.
    pub category: u32,
    /// `EF_*` bits.
    pub flags: u32,
    pub params: &'static [ParamInfo],
}

/// Whether an event marks the entry into or the exit from a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Enter,
    Exit,
}

impl Direction {
    /// Even type numbers are enter events, odd ones exit events.
    pub fn of_type(event_type: u16) -> Direction {
        if event_type % 2 == 0 {
            Direction::Enter
        } else {
            Direction::Exit
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Direction::Enter => ">",
            Direction::Exit => "<",
        }
    }
}

pub mod flags {
    pub const CREATES_FD: u32 = 1 << 0;
    pub const DESTROYS_FD: u32 = 1 << 1;
    pub const USES_FD: u32 = 1 << 2;
    pub const READS_FROM_FD: u32 = 1 << 3;
    pub const WRITES_TO_FD: u32 = 1 << 4;
    pub const MODIFIES_STATE: u32 = 1 << 5;
    pub const UNUSED: u32 = 1 << 6;
    pub const OLD_VERSION: u32 = 1 << 9;
    pub const LARGE_PAYLOAD: u32 = 1 << 11;
}

pub mod category {
    pub const INTERNAL: u32 = 1 << 8;
    pub const SYSCALL: u32 = 1 << 9;
    pub const METAEVENT: u32 = 1 << 12;
}

/// The decoding of a parameter, from its `PT_*` code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    None,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    CharBuf,
    ByteBuf,
    Errno,
    SockAddr,
    SockTuple,
    Fd,
    Pid,
    FdList,
    FsPath,
    SyscallId,
    SigType,
    RelTime,
    AbsTime,
    Port,
    L4Proto,
    SockFamily,
    Bool,
    Ipv4Addr,
    Dyn,
    Flags8,
    Flags16,
    Flags32,
    Uid,
    Gid,
    Double,
    SigSet,
    CharBufArray,
    CharBufPairArray,
    Ipv4Net,
    Ipv6Addr,
    Ipv6Net,
    IpAddr,
    IpNet,
    Mode,
    FsRelPath,
    Enumflags8,
    Enumflags16,
    Enumflags32,
    Unknown(u8),
}

impl ParamType {
    pub fn from_code(code: u8) -> ParamType {
        use ParamType::*;
        match code {
            0 => None,
            1 => Int8,
            2 => Int16,
            3 => Int32,
            4 => Int64,
            5 => Uint8,
            6 => Uint16,
            7 => Uint32,
            8 => Uint64,
            9 => CharBuf,
            10 => ByteBuf,
            11 => Errno,
            12 => SockAddr,
            13 => SockTuple,
            14 => Fd,
            15 => Pid,
            16 => FdList,
            17 => FsPath,
            18 => SyscallId,
            19 => SigType,
            20 => RelTime,
            21 => AbsTime,
            22 => Port,
            23 => L4Proto,
            24 => SockFamily,
            25 => Bool,
            26 => Ipv4Addr,
            27 => Dyn,
            28 => Flags8,
            29 => Flags16,
            30 => Flags32,
            31 => Uid,
            32 => Gid,
            33 => Double,
            34 => SigSet,
            35 => CharBufArray,
            36 => CharBufPairArray,
            37 => Ipv4Net,
            38 => Ipv6Addr,
            39 => Ipv6Net,
            40 => IpAddr,
            41 => IpNet,
            42 => Mode,
            43 => FsRelPath,
            44 => Enumflags8,
            45 => Enumflags16,
            46 => Enumflags32,
            other => Unknown(other),
        }
    }

    /// Whether values of this type are numbers read little-endian from
    /// the parameter bytes.
    pub fn is_numeric(self) -> bool {
        use ParamType::*;
        matches!(
            self,
            Int8 | Int16
                | Int32
                | Int64
                | Uint8
                | Uint16
                | Uint32
                | Uint64
                | Errno
                | Fd
                | Pid
                | SyscallId
                | SigType
                | RelTime
                | AbsTime
                | Port
                | L4Proto
                | SockFamily
                | Bool
                | Flags8
                | Flags16
                | Flags32
                | Uid
                | Gid
                | SigSet
                | Mode
                | Enumflags8
                | Enumflags16
                | Enumflags32
        )
    }

    pub fn is_signed(self) -> bool {
        use ParamType::*;
        matches!(self, Int8 | Int16 | Int32 | Int64 | Errno | Fd | Pid)
    }
}

/// The number of event types the schema knows.
pub const EVENT_TYPE_COUNT: usize = EVENTS.len();

/// The schema of an event type, or None for numbers beyond the table.
pub fn event_info(event_type: u16) -> Option<&'static EventInfo> {
    EVENTS.get(usize::from(event_type))
}

/// Every type number (enter, exit and old versions) whose name is `name`.
pub fn event_types_named(name: &str) -> Vec<u16> {
    (0..EVENTS.len())
        .filter(|&i| EVENTS[i].name == name && EVENTS[i].name != "NA")
        .filter_map(|i| u16::try_from(i).ok())
        .collect()
}

/// Every type number, for iteration.
pub fn all_event_types() -> impl Iterator<Item = (u16, &'static EventInfo)> {
    EVENTS
        .iter()
        .enumerate()
        .filter_map(|(i, e)| u16::try_from(i).ok().map(|t| (t, e)))
}

/// Whether `name` is the name of a system call the schema knows.
pub fn is_syscall_name(name: &str) -> bool {
    !name.is_empty() && super::table_data::SYSCALL_NAMES.contains(&name)
}

/// Every system call code (`PT_SYSCALLID` value) called `name`.
pub fn syscall_codes(name: &str) -> impl Iterator<Item = u16> + '_ {
    super::table_data::SYSCALL_NAMES
        .iter()
        .enumerate()
        .filter(move |(_, n)| !name.is_empty() && **n == name)
        .filter_map(|(code, _)| u16::try_from(code).ok())
}

/// The name of a system call code (`PT_SYSCALLID` parameter values).
pub fn syscall_name(code: u64) -> Option<&'static str> {
    let name = *super::table_data::SYSCALL_NAMES.get(usize::try_from(code).ok()?)?;
    (!name.is_empty()).then_some(name)
}

/// The value types ptrace's `addr` and `data` (PT_DYN) may carry, indexed
/// by their first byte: a u64 shown in hex, or a signal number.
static PTRACE_DYN_VARIANTS: &[ParamInfo] = &[
    ParamInfo {
        name: "uint64",
        ty: 8,
        fmt: 2,
        names: None,
    },
    ParamInfo {
        name: "sigtype",
        ty: 19,
        fmt: 1,
        names: None,
    },
];

const fn variant(name: &'static str, ty: u8, fmt: u8) -> ParamInfo {
    ParamInfo {
        name,
        ty,
        fmt,
        names: None,
    }
}

/// setsockopt/getsockopt `val`: the option's bytes as given (hex), an
/// errno (SO_ERROR), a u32, a u64 (SO_COOKIE), or a timeval in ns.
static SOCKOPT_DYN_VARIANTS: &[ParamInfo] = &[
    variant("bytebuf", 10, 2),
    variant("errno", 11, 1),
    variant("uint32", 7, 1),
    variant("uint64", 8, 1),
    variant("reltime", 20, 1),
];

/// keyctl `arg2`..`arg5`: an integer, or a string the operation reads.
static KEYCTL_DYN_VARIANTS: &[ParamInfo] = &[variant("int64", 4, 1), variant("charbuf", 9, 0)];

/// bpf's `res_or_fd`: the fd a map or program load returned, or a result.
static BPF_DYN_VARIANTS: &[ParamInfo] = &[variant("fd", 14, 1), variant("res", 11, 1)];

/// The value a PT_DYN parameter holds: its first byte picks the type from
/// a list owned by the parameter, the rest is the value. The lists are
/// known by the parameter's name (each name is PT_DYN in one family of
/// events only: ptrace's `addr` and `data`, the socket options' `val`,
/// keyctl's `argN`, bpf's `res_or_fd`); None for any other, which then
/// renders as raw bytes.
pub fn dyn_variant(param: &ParamInfo, index: u8) -> Option<&'static ParamInfo> {
    if param.param_type() != ParamType::Dyn {
        return None;
    }
    let variants = match param.name {
        "addr" | "data" => PTRACE_DYN_VARIANTS,
        "val" => SOCKOPT_DYN_VARIANTS,
        "arg2" | "arg3" | "arg4" | "arg5" => KEYCTL_DYN_VARIANTS,
        "res_or_fd" => BPF_DYN_VARIANTS,
        _ => return None,
    };
    variants.get(usize::from(index))
}

#[cfg(test)]
mod tests {
    #[test]
    fn code_sets_agree_with_the_param_types() {
        for code in 0..=u8::MAX {
            let info = super::ParamInfo {
                name: "value",
                ty: code,
                fmt: 0,
                names: None,
            };
            let ty = super::ParamType::from_code(code);
            assert_eq!(info.is_numeric(), ty.is_numeric(), "code {code}");
            assert_eq!(info.is_signed(), ty.is_signed(), "code {code}");
            assert_eq!(
                info.is_result_type(),
                matches!(
                    ty,
                    super::ParamType::Errno | super::ParamType::Fd | super::ParamType::Pid
                ),
                "code {code}"
            );
        }
    }

    use super::*;

    #[test]
    fn open_exit_has_fd_then_name() {
        let info = event_info(3).unwrap();
        assert_eq!(info.name, "open");
        assert_eq!(info.params[0].name, "fd");
        assert_eq!(info.params[0].param_type(), ParamType::Fd);
        assert_eq!(info.params[1].name, "name");
        assert_eq!(Direction::of_type(3), Direction::Exit);
    }

    #[test]
    fn execve_names_every_version() {
        let types = event_types_named("execve");
        assert!(types.contains(&292) && types.contains(&293));
        assert!(types.len() >= 8, "{types:?}");
    }
}
