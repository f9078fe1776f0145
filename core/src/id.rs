//! Container IDs: 8 lowercase hex characters from the OS CSPRNG, the format
//! go-container wrote, so old and new IDs share one namespace.

/// Generates a new container ID (8 lowercase hex characters).
pub fn generate_id() -> String {
    let mut bytes = [0u8; 4];
    // The OS RNG failing means the host is unusable for anything secure;
    // there is no sensible recovery, and the bindings catch panics.
    getrandom::fill(&mut bytes).expect("operating system random number generator failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` has the shape of a full container ID.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 8 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_eight_lower_hex_and_differ() {
        let ids: std::collections::HashSet<String> = (0..200).map(|_| generate_id()).collect();
        assert!(ids.len() > 195, "IDs repeat too often: {}", ids.len());
        for id in &ids {
            assert!(is_valid_id(id), "bad id {id}");
        }
        assert!(!is_valid_id("ABCDEF01"));
        assert!(!is_valid_id("abc"));
    }
}
