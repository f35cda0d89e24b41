//! Block type numbers of the capture format.

pub const SHB: u32 = 0x0A0D_0D0A;
pub const SHB_MAGIC: u32 = 0x1A2B_3C4D;

pub const MI: u32 = 0x201;
pub const MI_INT: u32 = 0x8002_ABCD;

pub const PL_V1: u32 = 0x202;
pub const PL_V1_INT: u32 = 0x8000_ABCD;
pub const PL_V2: u32 = 0x207;
pub const PL_V2_INT: u32 = 0x8013_ABCD;
pub const PL_V3: u32 = 0x209;
pub const PL_V3_INT: u32 = 0x8014_ABCD;
pub const PL_V4: u32 = 0x210;
pub const PL_V5: u32 = 0x211;
pub const PL_V6: u32 = 0x212;
pub const PL_V7: u32 = 0x213;
pub const PL_V8: u32 = 0x214;
pub const PL_V9: u32 = 0x215;

pub const FDL: u32 = 0x203;
pub const FDL_INT: u32 = 0x8001_ABCD;
pub const FDL_V2: u32 = 0x218;

pub const EV: u32 = 0x204;
pub const EV_INT: u32 = 0x8010_ABCD;
pub const EV_V2: u32 = 0x216;
pub const EV_V2_LARGE: u32 = 0x221;
pub const EVF: u32 = 0x208;
pub const EVF_V2: u32 = 0x217;
pub const EVF_V2_LARGE: u32 = 0x222;

pub const IL: u32 = 0x205;
pub const IL_INT: u32 = 0x8011_ABCD;
pub const IL_V2: u32 = 0x219;

pub const UL: u32 = 0x206;
pub const UL_INT: u32 = 0x8012_ABCD;
pub const UL_V2: u32 = 0x220;

/// Process list layout generation: 1 for V1 up to 9 for V9.
pub fn proclist_version(block_type: u32) -> Option<u8> {
    Some(match block_type {
        PL_V1 | PL_V1_INT => 1,
        PL_V2 | PL_V2_INT => 2,
        PL_V3 | PL_V3_INT => 3,
        PL_V4 => 4,
        PL_V5 => 5,
        PL_V6 => 6,
        PL_V7 => 7,
        PL_V8 => 8,
        PL_V9 => 9,
        _ => return None,
    })
}

pub fn is_event_block(block_type: u32) -> bool {
    matches!(
        block_type,
        EV | EV_INT | EV_V2 | EV_V2_LARGE | EVF | EVF_V2 | EVF_V2_LARGE
    )
}
