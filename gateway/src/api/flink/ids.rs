//! Flink's identifiers for dtle's jobs: 32 lower-case hex digits, derived from the dtle job ID
//! (so the same job always has the same Flink ID, across agent restarts and agents), and the
//! IDs of a job's two vertices, derived from the job's.

use jobs::Role;

/// FNV-1a, 128 bits: stable across builds and platforms (unlike std's hashers).
fn fnv1a_128(bytes: &[u8]) -> u128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
    bytes.iter().fold(OFFSET, |hash, byte| {
        (hash ^ u128::from(*byte)).wrapping_mul(PRIME)
    })
}

/// The Flink job ID of dtle job `id`.
pub fn job_id(id: &str) -> String {
    format!("{:032x}", fnv1a_128(id.as_bytes()))
}

/// The Flink vertex ID of job `id`'s `role` task.
pub fn vertex_id(id: &str, role: Role) -> String {
    format!(
        "{:032x}",
        fnv1a_128(format!("{id}\u{0}{}", role.as_str()).as_bytes())
    )
}

/// Whether `text` has the shape of a Flink ID (32 hex digits).
pub fn is_flink_id(text: &str) -> bool {
    text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The dtle job among `ids` that `wanted` names: its dtle ID, or its Flink ID (any case).
pub fn resolve<'a>(wanted: &str, ids: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let flink = is_flink_id(wanted).then(|| wanted.to_ascii_lowercase());
    let mut by_flink = None;
    for id in ids {
        if id == wanted {
            return Some(id);
        }
        if flink.as_deref().is_some_and(|f| f == job_id(id)) {
            by_flink = Some(id);
        }
    }
    by_flink
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_32_hex_digits_stable_and_distinct() {
        let a = job_id("job-a");
        assert!(is_flink_id(&a), "{a}");
        assert_eq!(a, job_id("job-a"));
        assert_ne!(a, job_id("job-b"));
        // FNV-1a 128 of the empty input is its offset basis.
        assert_eq!(job_id(""), "6c62272e07bb014262b821756295c58d");
        let (src, dest) = (
            vertex_id("job-a", Role::Src),
            vertex_id("job-a", Role::Dest),
        );
        assert!(is_flink_id(&src) && is_flink_id(&dest));
        assert_ne!(src, dest);
        assert_ne!(src, a);
    }

    #[test]
    fn a_job_is_found_by_either_id() {
        let ids = ["one", "two"];
        assert_eq!(resolve("two", ids), Some("two"));
        assert_eq!(resolve(&job_id("one"), ids), Some("one"));
        assert_eq!(resolve(&job_id("one").to_uppercase(), ids), Some("one"));
        assert_eq!(resolve(&job_id("three"), ids), None);
        assert_eq!(resolve("three", ids), None);
        assert!(!is_flink_id("not-hex-not-hex-not-hex-not-hex-"));
    }
}
