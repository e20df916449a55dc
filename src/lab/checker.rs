//! Proof that a lab guest lost nothing: its serial heartbeats (as logged by the
//! [console server](super::console)) and the records its workload wrote to disk.
//!
//! Formats (produced by `resources/guest/workload.c`):
//! - heartbeat log line: `RECV_UNIX_MS<TAB>TFHB name=NAME boot=B seq=S mono_ms=M acked=A`; `seq`
//!   restarts at 1 on each boot, one line every 100 ms.
//! - disk: 512-byte sectors, little-endian. Sector 0 is a header (`TFHDR001`, version, boot,
//!   name, start time, CRC32); sector N >= 1 holds record N (`TFREC001`, N, boot, guest monotonic
//!   and real-time ns, name, a fill pattern, CRC32 of bytes 0..508 in bytes 508..512).

use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, IoContext, Result};

/// Size of a disk sector, header and record.
pub const SECTOR: usize = 512;
/// Magic of a record sector.
pub const RECORD_MAGIC: &[u8; 8] = b"TFREC001";
/// Magic of the header sector (sector 0).
pub const HEADER_MAGIC: &[u8; 8] = b"TFHDR001";
/// Length of the NUL-padded name field in header and records.
pub const NAME_LEN: usize = 32;

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as zlib), the checksum of headers and records.
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c = CRC_TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    c ^ 0xFFFF_FFFF
}

/// One record as the workload writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub seq: u64,
    pub boot: u32,
    pub mono_ns: u64,
    pub unix_ns: u64,
    pub name: String,
}

fn u32_at(s: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(s: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"))
}

fn name_field(s: &[u8]) -> String {
    let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
    String::from_utf8_lossy(&s[..end]).into_owned()
}

fn checksum_ok(s: &[u8]) -> bool {
    crc32(&s[..SECTOR - 4]) == u32_at(s, SECTOR - 4)
}

/// Encodes record `seq` exactly as the guest workload does (for tests and tools).
pub fn encode_record(rec: &Record) -> [u8; SECTOR] {
    let mut s = [0u8; SECTOR];
    s[..8].copy_from_slice(RECORD_MAGIC);
    s[8..16].copy_from_slice(&rec.seq.to_le_bytes());
    s[16..20].copy_from_slice(&rec.boot.to_le_bytes());
    s[24..32].copy_from_slice(&rec.mono_ns.to_le_bytes());
    s[32..40].copy_from_slice(&rec.unix_ns.to_le_bytes());
    let name = rec.name.as_bytes();
    let n = name.len().min(NAME_LEN - 1);
    s[40..40 + n].copy_from_slice(&name[..n]);
    for (i, b) in s.iter_mut().enumerate().take(SECTOR - 4).skip(72) {
        *b = (rec.seq.wrapping_mul(131).wrapping_add(i as u64) & 0xff) as u8;
    }
    let crc = crc32(&s[..SECTOR - 4]);
    s[SECTOR - 4..].copy_from_slice(&crc.to_le_bytes());
    s
}

/// Decodes the record in sector `sector`, or `None` if it is not a valid record for that sector
/// (wrong magic, wrong sequence number, bad checksum).
pub fn decode_record(sector: u64, s: &[u8]) -> Option<Record> {
    if s.len() < SECTOR || &s[..8] != RECORD_MAGIC || u64_at(s, 8) != sector || !checksum_ok(s) {
        return None;
    }
    Some(Record {
        seq: sector,
        boot: u32_at(s, 16),
        mono_ns: u64_at(s, 24),
        unix_ns: u64_at(s, 32),
        name: name_field(&s[40..40 + NAME_LEN]),
    })
}

/// Decodes the header sector: `(boot, name)` of the last start, if valid.
pub fn decode_header(s: &[u8]) -> Option<(u32, String)> {
    if s.len() < SECTOR || &s[..8] != HEADER_MAGIC || !checksum_ok(s) {
        return None;
    }
    Some((u32_at(s, 12), name_field(&s[16..16 + NAME_LEN])))
}

/// A run of consecutive records written during one boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootRun {
    pub boot: u32,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// What [`check_records`] found on a raw disk image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordReport {
    /// Highest record number with a valid record (0 if none). The scan covers `1..=acked` and
    /// then goes on until the first sector without a valid record.
    pub highest_valid: u64,
    /// Records in `1..=acked` whose sector is all zeros (never written, or lost).
    pub missing: Vec<u64>,
    /// Records in `1..=acked` whose sector holds something that is not that valid record
    /// (torn write, garbage, a different record).
    pub corrupt: Vec<u64>,
    /// Boot counter in the header sector, if the header is valid.
    pub header_boot: Option<u32>,
    /// Consecutive valid records grouped by the boot that wrote them, in disk order.
    pub boot_runs: Vec<BootRun>,
}

impl RecordReport {
    /// True when every acknowledged record is present and valid.
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty() && self.corrupt.is_empty()
    }
}

/// Reads exactly one sector, `Ok(false)` at end of disk.
fn read_sector(r: &mut impl Read, buf: &mut [u8; SECTOR]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < SECTOR {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if filled == 0 {
        return Ok(false);
    }
    buf[filled..].fill(0);
    Ok(true)
}

/// Checks a raw image of a lab guest's disk (a qcow2 converted with `qemu-img convert -O raw`, or
/// the raw file itself): every record `1..=acked` must be present and valid.
pub fn check_records(raw_disk: &mut (impl Read + Seek), acked: u64) -> Result<RecordReport> {
    raw_disk
        .seek(SeekFrom::Start(0))
        .ctx(|| "seeking to the start of the disk image".to_string())?;
    let mut r = BufReader::with_capacity(1 << 20, raw_disk);
    let mut s = [0u8; SECTOR];
    let mut report = RecordReport {
        highest_valid: 0,
        missing: Vec::new(),
        corrupt: Vec::new(),
        header_boot: None,
        boot_runs: Vec::new(),
    };
    if !read_sector(&mut r, &mut s).ctx(|| "reading the disk image header".to_string())? {
        return Err(Error::Lab(
            "the disk image is empty: was it converted to raw (qemu-img convert -O raw)?".into(),
        ));
    }
    report.header_boot = decode_header(&s).map(|(boot, _)| boot);
    let mut sector = 1u64;
    loop {
        let more = read_sector(&mut r, &mut s)
            .ctx(|| format!("reading sector {sector} of the disk image"))?;
        let rec = if more {
            decode_record(sector, &s)
        } else {
            None
        };
        match rec {
            Some(rec) => {
                report.highest_valid = sector;
                match report.boot_runs.last_mut() {
                    Some(run) if run.boot == rec.boot && run.last_seq + 1 == sector => {
                        run.last_seq = sector
                    }
                    _ => report.boot_runs.push(BootRun {
                        boot: rec.boot,
                        first_seq: sector,
                        last_seq: sector,
                    }),
                }
            }
            None if sector > acked => break,
            None if !more || s.iter().all(|&b| b == 0) => report.missing.push(sector),
            None => report.corrupt.push(sector),
        }
        sector += 1;
    }
    Ok(report)
}

/// One parsed heartbeat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub recv_unix_ms: i64,
    pub name: String,
    pub boot: u32,
    pub seq: u64,
    pub mono_ms: u64,
    pub acked: u64,
}

/// Parses `RECV_UNIX_MS<TAB>TFHB name=.. boot=.. seq=.. mono_ms=.. acked=..`.
pub fn parse_heartbeat_line(line: &str) -> Option<Heartbeat> {
    let (ms, rest) = line.split_once('\t')?;
    let recv_unix_ms = ms.trim().parse().ok()?;
    let mut words = rest.split_ascii_whitespace();
    if words.next()? != "TFHB" {
        return None;
    }
    let (mut name, mut boot, mut seq, mut mono, mut acked) = (None, None, None, None, None);
    for w in words {
        let (k, v) = w.split_once('=')?;
        match k {
            "name" => name = Some(v.to_string()),
            "boot" => boot = v.parse().ok(),
            "seq" => seq = v.parse().ok(),
            "mono_ms" => mono = v.parse().ok(),
            "acked" => acked = v.parse().ok(),
            _ => {}
        }
    }
    Some(Heartbeat {
        recv_unix_ms,
        name: name?,
        boot: boot?,
        seq: seq?,
        mono_ms: mono?,
        acked: acked?,
    })
}

/// What [`check_heartbeats`] found for one guest in a time window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatReport {
    /// Heartbeat lines of this guest in the window.
    pub lines: u64,
    /// Boot counters seen, in order of appearance (a failover restart adds one).
    pub boots: Vec<u32>,
    /// Sequence number of the first and the last heartbeat in the window.
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    /// Host receive time of the first and the last heartbeat in the window.
    pub first_unix_ms: Option<i64>,
    pub last_unix_ms: Option<i64>,
    /// Inclusive ranges of sequence numbers missing within a boot. A boot that begins inside the
    /// window must begin at seq 1; the first boot in the window may begin anywhere.
    pub missing: Vec<(u64, u64)>,
    /// Largest host receive-time gap between consecutive heartbeats (across boots too: that gap
    /// is the outage a failover caused), and the receive time of the heartbeat that ended it.
    pub max_gap_ms: i64,
    pub max_gap_at_unix_ms: Option<i64>,
    /// Highest `acked` value reported (records the guest knows to be durable).
    pub max_acked: u64,
    /// Heartbeats whose seq did not increase within a boot (duplicates, reordering; also two
    /// copies of the guest that started with the same boot counter).
    pub out_of_order: u64,
    /// Times consecutive heartbeats came from different boots: 1 per restart; many means two
    /// copies of the guest ran at once.
    pub boot_switches: u64,
    /// Lines starting with `TFHB` for this name that could not be parsed (e.g. torn by kernel
    /// messages on the same serial port).
    pub malformed: u64,
}

impl HeartbeatReport {
    /// Missing heartbeats in total.
    pub fn missing_count(&self) -> u64 {
        self.missing.iter().map(|(a, b)| b - a + 1).sum()
    }
}

/// Reads a console log (`dir/NAME.log` or `dir/console.log`) and checks the heartbeats of guest
/// `name` received in `since_unix_ms..=until_unix_ms` (no upper bound if `None`).
pub fn check_heartbeats(
    log: &Path,
    name: &str,
    since_unix_ms: i64,
    until_unix_ms: Option<i64>,
) -> Result<HeartbeatReport> {
    let file = File::open(log).ctx(|| format!("opening console log {}", log.display()))?;
    let mut report = HeartbeatReport {
        lines: 0,
        boots: Vec::new(),
        first_seq: None,
        last_seq: None,
        first_unix_ms: None,
        last_unix_ms: None,
        missing: Vec::new(),
        max_gap_ms: 0,
        max_gap_at_unix_ms: None,
        max_acked: 0,
        out_of_order: 0,
        boot_switches: 0,
        malformed: 0,
    };
    let name_tag = format!("name={name} ");
    let mut prev: Option<Heartbeat> = None;
    let mut last_seq_of_boot: std::collections::HashMap<u32, u64> = Default::default();
    for line in BufReader::new(file).split(b'\n') {
        let line = line.ctx(|| format!("reading console log {}", log.display()))?;
        let line = String::from_utf8_lossy(&line);
        let Some(hb) = parse_heartbeat_line(&line) else {
            let torn = line
                .split_once('\t')
                .is_some_and(|(_, l)| l.starts_with("TFHB") && l.contains(&name_tag));
            if torn {
                report.malformed += 1;
            }
            continue;
        };
        if hb.name != name
            || hb.recv_unix_ms < since_unix_ms
            || until_unix_ms.is_some_and(|u| hb.recv_unix_ms > u)
        {
            continue;
        }
        report.lines += 1;
        report.max_acked = report.max_acked.max(hb.acked);
        report.first_seq.get_or_insert(hb.seq);
        report.first_unix_ms.get_or_insert(hb.recv_unix_ms);
        report.last_seq = Some(hb.seq);
        report.last_unix_ms = Some(hb.recv_unix_ms);
        match last_seq_of_boot.get(&hb.boot).copied() {
            Some(last) if hb.seq > last + 1 => report.missing.push((last + 1, hb.seq - 1)),
            Some(last) if hb.seq <= last => report.out_of_order += 1,
            Some(_) => {}
            None => {
                report.boots.push(hb.boot);
                if prev.is_some() && hb.seq > 1 {
                    report.missing.push((1, hb.seq - 1));
                }
            }
        }
        let last = last_seq_of_boot.entry(hb.boot).or_insert(hb.seq);
        *last = (*last).max(hb.seq);
        if let Some(p) = &prev {
            let gap = hb.recv_unix_ms - p.recv_unix_ms;
            if gap > report.max_gap_ms {
                report.max_gap_ms = gap;
                report.max_gap_at_unix_ms = Some(hb.recv_unix_ms);
            }
            if p.boot != hb.boot {
                report.boot_switches += 1;
            }
        }
        prev = Some(hb);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn rec(seq: u64, boot: u32) -> [u8; SECTOR] {
        encode_record(&Record {
            seq,
            boot,
            mono_ns: seq * 50_000_000,
            unix_ns: 1_700_000_000_000_000_000 + seq,
            name: "vm1".into(),
        })
    }

    fn header(boot: u32) -> [u8; SECTOR] {
        let mut s = [0u8; SECTOR];
        s[..8].copy_from_slice(HEADER_MAGIC);
        s[8..12].copy_from_slice(&1u32.to_le_bytes());
        s[12..16].copy_from_slice(&boot.to_le_bytes());
        s[16..19].copy_from_slice(b"vm1");
        let crc = crc32(&s[..SECTOR - 4]);
        s[SECTOR - 4..].copy_from_slice(&crc.to_le_bytes());
        s
    }

    fn disk(sectors: &[[u8; SECTOR]], total: usize) -> Cursor<Vec<u8>> {
        let mut v = vec![0u8; total * SECTOR];
        for (i, s) in sectors.iter().enumerate() {
            v[i * SECTOR..(i + 1) * SECTOR].copy_from_slice(s);
        }
        Cursor::new(v)
    }

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn record_roundtrip_and_validation() {
        let s = rec(7, 3);
        let r = decode_record(7, &s).expect("valid");
        assert_eq!((r.seq, r.boot, r.name.as_str()), (7, 3, "vm1"));
        assert!(
            decode_record(8, &s).is_none(),
            "a record in the wrong sector is not valid"
        );
        let mut torn = s;
        torn[300] ^= 1;
        assert!(decode_record(7, &torn).is_none());
        assert_eq!(decode_header(&header(4)), Some((4, "vm1".to_string())));
    }

    #[test]
    fn clean_disk_with_two_boots() {
        let mut secs = vec![header(2)];
        secs.extend((1..=10).map(|n| rec(n, 1)));
        secs.extend((11..=15).map(|n| rec(n, 2)));
        let report = check_records(&mut disk(&secs, 64), 12).unwrap();
        assert!(report.is_clean(), "{report:?}");
        assert_eq!(report.highest_valid, 15);
        assert_eq!(report.header_boot, Some(2));
        assert_eq!(
            report.boot_runs,
            vec![
                BootRun {
                    boot: 1,
                    first_seq: 1,
                    last_seq: 10
                },
                BootRun {
                    boot: 2,
                    first_seq: 11,
                    last_seq: 15
                }
            ]
        );
    }

    #[test]
    fn missing_and_corrupt_records() {
        let mut secs = vec![header(1)];
        secs.extend((1..=10).map(|n| rec(n, 1)));
        secs[4] = [0u8; SECTOR]; // record 4 lost
        secs[6][100] ^= 0xff; // record 6 torn
        secs[8] = rec(3, 1); // record 3 where 8 belongs
        let report = check_records(&mut disk(&secs, 64), 12).unwrap();
        assert_eq!(report.missing, vec![4, 11, 12]);
        assert_eq!(report.corrupt, vec![6, 8]);
        assert_eq!(report.highest_valid, 10);
        assert!(!report.is_clean());
    }

    #[test]
    fn acked_beyond_end_of_disk_is_missing() {
        let secs = vec![header(1), rec(1, 1), rec(2, 1)];
        let report = check_records(&mut disk(&secs, 3), 4).unwrap();
        assert_eq!(report.missing, vec![3, 4]);
        assert_eq!(report.highest_valid, 2);
    }

    fn write_log(lines: &[(i64, String)]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for (ms, l) in lines {
            writeln!(f, "{ms}\t{l}").unwrap();
        }
        f
    }

    fn hb(name: &str, boot: u32, seq: u64, acked: u64) -> String {
        format!(
            "TFHB name={name} boot={boot} seq={seq} mono_ms={} acked={acked}",
            seq * 100
        )
    }

    #[test]
    fn heartbeats_clean_run() {
        let lines: Vec<_> = (1..=50)
            .map(|s| (1000 + s as i64 * 100, hb("vm1", 1, s, s * 2)))
            .collect();
        let f = write_log(&lines);
        let r = check_heartbeats(f.path(), "vm1", 0, None).unwrap();
        assert_eq!(r.lines, 50);
        assert_eq!(r.boots, vec![1]);
        assert_eq!((r.first_seq, r.last_seq), (Some(1), Some(50)));
        assert!(r.missing.is_empty());
        assert_eq!(r.max_gap_ms, 100);
        assert_eq!(r.max_acked, 100);
    }

    #[test]
    fn heartbeats_gap_missing_boot_change_and_window() {
        let mut lines = Vec::new();
        let mut t = 10_000i64;
        for s in 1..=20u64 {
            if (8..=11).contains(&s) {
                continue; // lost while the console reconnected
            }
            t += 100;
            lines.push((t, hb("vm1", 1, s, s)));
            lines.push((t + 1, hb("other", 1, s, s)));
            lines.push((t + 2, "random kernel noise".to_string()));
        }
        t += 100;
        lines.push((t, "TFHB name=vm1 boot=1 seq=".to_string())); // torn line
        t += 3_000; // failover: restart on the other host
        let gap_end = t;
        for s in 3..=10u64 {
            lines.push((t, hb("vm1", 2, s, 20 + s)));
            t += 100;
        }
        let f = write_log(&lines);
        let r = check_heartbeats(f.path(), "vm1", 0, None).unwrap();
        assert_eq!(r.lines, 16 + 8);
        assert_eq!(r.boots, vec![1, 2]);
        assert_eq!(r.missing, vec![(8, 11), (1, 2)]);
        assert_eq!(r.missing_count(), 6);
        assert_eq!(r.max_gap_ms, 3_100);
        assert_eq!(r.max_gap_at_unix_ms, Some(gap_end));
        assert_eq!(r.max_acked, 30);
        assert_eq!(r.malformed, 1);
        assert_eq!(r.out_of_order, 0);
        assert_eq!(r.boot_switches, 1);

        // A window starting mid-boot does not count the boot's earlier seqs as missing.
        let w = check_heartbeats(f.path(), "vm1", gap_end + 50, Some(gap_end + 350)).unwrap();
        assert_eq!(w.lines, 3);
        assert_eq!(w.boots, vec![2]);
        assert_eq!((w.first_seq, w.last_seq), (Some(4), Some(6)));
        assert!(w.missing.is_empty());
        assert_eq!(w.max_gap_ms, 100);
    }

    #[test]
    fn two_copies_of_a_guest_show_up() {
        let mut lines = Vec::new();
        for s in 1..=10u64 {
            lines.push((s as i64 * 100, hb("vm1", 2, s, s)));
            lines.push((s as i64 * 100 + 5, hb("vm1", 3, s, s)));
            lines.push((s as i64 * 100 + 7, hb("vm1", 3, s, s))); // same boot twice
        }
        let f = write_log(&lines);
        let r = check_heartbeats(f.path(), "vm1", 0, None).unwrap();
        assert_eq!(r.boots, vec![2, 3]);
        assert!(r.missing.is_empty(), "{r:?}");
        assert_eq!(r.boot_switches, 19);
        assert_eq!(r.out_of_order, 10);
    }

    #[test]
    fn heartbeat_line_parsing() {
        let h = parse_heartbeat_line("5\tTFHB name=a boot=2 seq=3 mono_ms=4 acked=5").unwrap();
        assert_eq!(
            (h.recv_unix_ms, h.name.as_str(), h.boot, h.seq, h.acked),
            (5, "a", 2, 3, 5)
        );
        assert!(parse_heartbeat_line("5\tTFBOOT name=a boot=2").is_none());
        assert!(parse_heartbeat_line("TFHB name=a boot=2 seq=3 mono_ms=4 acked=5").is_none());
    }
}
