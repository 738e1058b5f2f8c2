//! Block-parallel gzip whose bytes do not depend on the number of threads.
//!
//! The input is cut into fixed 1 MiB blocks. Each block is raw-deflated on a
//! worker thread with the previous block's last 32 KiB as preset dictionary
//! (so matches can reach back across the cut, as in a single stream) and ends
//! with a sync flush (byte-aligned, block not final); the last block is
//! finished instead. The deflate outputs are concatenated under one gzip
//! header and trailer, with the block CRCs combined. Since each block's output
//! depends only on its data, its dictionary, whether it is last and the level,
//! any number of workers produces the same bytes. This is pigz's design; the
//! `gzp` crate implements it too, but needs C zlib for its checksum combining.
//!
//! Blocks that cannot shrink (random or already-compressed data) are
//! recognised cheaply and stored instead of deflated: zlib would end up
//! emitting stored blocks for them anyway, after spending ten times as long
//! looking for matches. The test looks only at the block and its dictionary,
//! so it does not affect determinism; see [`looks_incompressible`].
//!
//! The header mirrors Go's `compress/gzip` (no name, mtime 0, OS 255), the
//! writer BuildKit uses.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use flate2::{Compress, Compression, FlushCompress, Status};

/// Size of the blocks compressed independently.
pub(crate) const BLOCK_SIZE: usize = 1 << 20;
/// Deflate's window: the dictionary carried from one block to the next.
const DICT_SIZE: usize = 32 * 1024;

struct Job {
    data: Vec<u8>,
    dict: Vec<u8>,
    last: bool,
    reply: SyncSender<io::Result<Deflated>>,
}

struct Deflated {
    bytes: Vec<u8>,
    crc: crc32fast::Hasher,
}

/// A gzip writer that compresses 1 MiB blocks on `threads` worker threads.
/// Call [`ParallelGzEncoder::finish`] to write the trailer and get the inner
/// writer back; dropping it without finishing leaves the stream incomplete.
pub(crate) struct ParallelGzEncoder<W: Write> {
    /// `None` only after `finish` took it.
    out: Option<W>,
    block: Vec<u8>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    jobs: Option<SyncSender<Job>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<Receiver<io::Result<Deflated>>>,
    max_pending: usize,
}

impl<W: Write> ParallelGzEncoder<W> {
    /// A new encoder at deflate `level` (0-9) with `threads` workers (at least 1).
    pub(crate) fn new(mut out: W, level: u32, threads: usize) -> io::Result<Self> {
        let threads = threads.max(1);
        let xfl = match level {
            9 => 2,
            1 => 4,
            _ => 0,
        };
        out.write_all(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255])?;

        let (jobs, queue) = mpsc::sync_channel::<Job>(threads);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        let workers = (0..threads)
            .map(|i| {
                let queue = queue.clone();
                thread::Builder::new()
                    .name(format!("kiln-gzip-{i}"))
                    .spawn(move || worker(&queue, level))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(ParallelGzEncoder {
            out: Some(out),
            block: Vec::with_capacity(BLOCK_SIZE),
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            jobs: Some(jobs),
            workers,
            pending: VecDeque::new(),
            max_pending: 2 * threads + 1,
        })
    }

    /// Compresses what is buffered as the last block, waits for every block,
    /// writes the trailer and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while !self.pending.is_empty() {
            self.collect_one()?;
        }
        let crc = std::mem::take(&mut self.crc);
        let mut trailer = [0u8; 8];
        // ISIZE is the input size modulo 2^32.
        trailer[4..].copy_from_slice(&(crc.total_len() as u32).to_le_bytes());
        trailer[..4].copy_from_slice(&crc.finalize().to_le_bytes());
        self.shutdown();
        let mut out = self.out.take().ok_or_else(stopped)?;
        out.write_all(&trailer)?;
        out.flush()?;
        Ok(out)
    }

    /// Hands the current block to the workers.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let data = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK_SIZE));
        let start = data.len().saturating_sub(DICT_SIZE);
        let next_dict = data[start..].to_vec();
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let (reply, result) = mpsc::sync_channel(1);
        let job = Job {
            data,
            dict,
            last,
            reply,
        };
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        jobs.send(job).map_err(|_| stopped())?;
        self.pending.push_back(result);
        while self.pending.len() > self.max_pending {
            self.collect_one()?;
        }
        Ok(())
    }

    /// Waits for the oldest block and writes it out.
    fn collect_one(&mut self) -> io::Result<()> {
        let Some(result) = self.pending.pop_front() else {
            return Ok(());
        };
        let deflated = result.recv().map_err(|_| stopped())??;
        self.out
            .as_mut()
            .ok_or_else(stopped)?
            .write_all(&deflated.bytes)?;
        self.crc.combine(&deflated.crc);
        Ok(())
    }

    fn shutdown(&mut self) {
        self.jobs = None; // workers see a closed queue and exit
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl<W: Write> Write for ParallelGzEncoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // A full block is dispatched only once more input arrives, so that the
        // last block of the stream is always the one that gets finished.
        if self.block.len() == BLOCK_SIZE && !buf.is_empty() {
            self.dispatch(false)?;
        }
        let n = buf.len().min(BLOCK_SIZE - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Flushing mid-stream would cut a short block and make the bytes depend
        // on write boundaries; only what is already compressed is passed on.
        match self.out.as_mut() {
            Some(out) => out.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for ParallelGzEncoder<W> {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn stopped() -> io::Error {
    io::Error::other("gzip worker stopped")
}

fn worker(queue: &std::sync::Mutex<Receiver<Job>>, level: u32) {
    let mut compress = Compress::new(Compression::new(level), false);
    let mut store = Compress::new(Compression::none(), false);
    loop {
        let job = {
            let Ok(queue) = queue.lock() else { return };
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let result = if level > 0 && looks_incompressible(&job.dict, &job.data) {
            deflate_block(&mut store, &job.data, &[], job.last)
        } else {
            deflate_block(&mut compress, &job.data, &job.dict, job.last)
        };
        // The encoder may have given up on this block; nothing to do then.
        let _ = job.reply.send(result);
    }
}

/// Raw-deflates one block: dictionary first, sync flush (or finish) at the end.
fn deflate_block(
    compress: &mut Compress,
    data: &[u8],
    dict: &[u8],
    last: bool,
) -> io::Result<Deflated> {
    compress.reset();
    if !dict.is_empty() {
        compress.set_dictionary(dict).map_err(io::Error::other)?;
    }
    let flush = if last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };
    let mut bytes = Vec::with_capacity(data.len() + data.len() / 16 + 64);
    let start_in = compress.total_in();
    loop {
        let consumed = (compress.total_in() - start_in) as usize;
        let status = compress
            .compress_vec(&data[consumed..], &mut bytes, flush)
            .map_err(io::Error::other)?;
        let all_in = (compress.total_in() - start_in) as usize == data.len();
        // A flush is complete when it leaves output space unused.
        let done = match (status, last) {
            (Status::StreamEnd, _) => true,
            (_, false) => all_in && bytes.len() < bytes.capacity(),
            (_, true) => false,
        };
        if done {
            break;
        }
        bytes.reserve(64 * 1024);
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(data);
    Ok(Deflated { bytes, crc })
}

/// Order-0 entropy (bits per byte) at or above which Huffman coding can save
/// at most 0.25%.
const ENTROPY_THRESHOLD: f64 = 7.98;
/// Share of a block's anchors that must repeat for matching to pay.
const MIN_REPEAT_SHARE: usize = 64; // 1/64, about 1.5%

/// Whether deflating `data` (with `dict` before it) would save almost
/// nothing: its byte distribution is near uniform (measured on a sample) and
/// strings of 8 bytes repeat within deflate's 32 KiB window at less than 1/64
/// of the places sampled. Random and already-compressed data pass; text, code
/// and binaries fail the first test in microseconds, repeated noise the second.
fn looks_incompressible(dict: &[u8], data: &[u8]) -> bool {
    if data.len() < 64 * 1024 {
        return false;
    }
    // Sampled histogram: 64 bytes out of every 1024.
    let mut counts = [0u32; 256];
    let mut sampled = 0u32;
    for chunk in data.chunks(1024) {
        for &b in &chunk[..chunk.len().min(64)] {
            counts[usize::from(b)] += 1;
        }
        sampled += chunk.len().min(64) as u32;
    }
    let total = f64::from(sampled);
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / total;
            -p * p.log2()
        })
        .sum();
    entropy >= ENTROPY_THRESHOLD && !repeats_within_window(dict, data)
}

/// Whether 8-byte strings of `data` recur within 32 KiB before them (in `dict`
/// or `data`) at 1/64 or more of the anchors checked. Anchors are the
/// positions whose 8-byte word hashes to 0 modulo 16: chosen by content, not
/// by offset, so both copies of a repeated string have the same anchors
/// whatever the distance between them, while only 1/16 of the positions
/// touch the (L1-sized) table.
fn repeats_within_window(dict: &[u8], data: &[u8]) -> bool {
    const TABLE_BITS: u32 = 12;
    const MUL: u64 = 0x9E37_79B1_85EB_CA87;
    let mut table = [u32::MAX; 1 << TABLE_BITS];
    // Positions count through dict then data, as one window.
    let word_at = |pos: usize| -> u64 {
        let (buf, i) = if pos < dict.len() {
            (dict, pos)
        } else {
            (data, pos - dict.len())
        };
        let mut w = [0u8; 8];
        w.copy_from_slice(&buf[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let (mut anchors, mut repeats) = (0usize, 0usize);
    for (buf, base, check) in [(dict, 0, false), (data, dict.len(), true)] {
        if buf.len() < 8 {
            continue;
        }
        let last = buf.len() - 8; // last position whose word fits
        let mut i = 0;
        while i <= last {
            // Find the anchors among the next 64 positions without branching.
            let n = (last + 1 - i).min(64);
            let mut mask = 0u64;
            for (k, window) in buf[i..i + n + 7].windows(8).enumerate() {
                let mut w = [0u8; 8];
                w.copy_from_slice(window);
                let h = u64::from_le_bytes(w).wrapping_mul(MUL) >> 32;
                mask |= u64::from(h & 15 == 0) << k;
            }
            while mask != 0 {
                let k = mask.trailing_zeros() as usize;
                mask &= mask - 1;
                let pos = base + i + k;
                let w = word_at(pos);
                let h = w.wrapping_mul(MUL) >> 32;
                let slot = &mut table[(h >> 4) as usize & ((1 << TABLE_BITS) - 1)];
                let candidate = *slot as usize;
                *slot = pos as u32;
                if check {
                    anchors += 1;
                    if candidate < pos && pos - candidate <= DICT_SIZE && word_at(candidate) == w {
                        repeats += 1;
                    }
                }
            }
            i += n;
        }
    }
    repeats * MIN_REPEAT_SHARE >= anchors.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn gzip(data: &[u8], level: u32, threads: usize) -> Vec<u8> {
        let mut enc = ParallelGzEncoder::new(Vec::new(), level, threads).unwrap();
        // Odd write sizes: the output must not depend on them.
        for chunk in data.chunks(777_777) {
            enc.write_all(chunk).unwrap();
        }
        enc.finish().unwrap()
    }

    fn gunzip(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(data)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    fn sample(len: usize) -> Vec<u8> {
        // Half noise, half text, so both stored and matched blocks occur.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        (0..len)
            .map(|i| {
                if i < len / 2 {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                } else {
                    b"the quick brown fox jumps over the lazy dog\n"[i % 44]
                }
            })
            .collect()
    }

    #[test]
    fn output_round_trips_and_does_not_depend_on_thread_count() {
        let data = sample(3 * BLOCK_SIZE + 12345);
        let one = gzip(&data, 6, 1);
        assert_eq!(gunzip(&one), data);
        assert_eq!(gzip(&data, 6, 2), one);
        assert_eq!(gzip(&data, 6, 4), one);
    }

    #[test]
    fn empty_input_and_exact_block_multiples_are_valid_gzip() {
        assert_eq!(gunzip(&gzip(b"", 6, 2)), b"");
        let data = sample(2 * BLOCK_SIZE);
        assert_eq!(gunzip(&gzip(&data, 6, 3)), data);
    }

    #[test]
    fn header_matches_go_compress_gzip() {
        let out = gzip(b"x", 6, 1);
        assert_eq!(&out[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
        assert_eq!(gzip(b"x", 9, 1)[8], 2);
        assert_eq!(gzip(b"x", 1, 1)[8], 4);
    }

    #[test]
    fn incompressible_blocks_are_recognised_and_compressible_ones_are_not() {
        let data = sample(2 * BLOCK_SIZE);
        let (noise, text) = data.split_at(BLOCK_SIZE);
        assert!(looks_incompressible(&[], noise));
        assert!(!looks_incompressible(&[], text));
        // Noise that repeats within the window has high entropy but matches.
        let repeated = noise[..16 * 1024].repeat(64);
        assert!(!looks_incompressible(&[], &repeated));
        // ... also when the repeat reaches back into the dictionary.
        let dict = &noise[..DICT_SIZE];
        let echo_of_dict: Vec<u8> = dict.iter().cycle().take(BLOCK_SIZE).copied().collect();
        assert!(!looks_incompressible(dict, &echo_of_dict));
        // Stored noise is barely larger than the input, and still valid.
        let out = gzip(noise, 6, 2);
        assert!(out.len() < noise.len() + noise.len() / 500, "{}", out.len());
        assert_eq!(gunzip(&out), noise);
    }

    #[test]
    fn dictionary_keeps_the_ratio_of_a_single_stream() {
        // Text that repeats with a period longer than nothing but shorter than
        // 32 KiB compresses as well across block cuts as within them.
        let data = sample(4 * BLOCK_SIZE)[2 * BLOCK_SIZE..].repeat(2);
        let parallel = gzip(&data, 6, 2).len();
        let mut single = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        single.write_all(&data).unwrap();
        let single = single.finish().unwrap().len();
        assert!(
            parallel <= single + single / 50 + 64,
            "parallel {parallel} vs single {single}"
        );
    }
}
