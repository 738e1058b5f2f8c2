//! Choosing the manifest for a platform from an image index, as containerd's default
//! matcher (`platforms.Only`) does.
//!
//! A wanted platform accepts, best first: itself; for `arm/vN` the older variants down to
//! `v5`; for `amd64/vN` the older variants down to plain `amd64`, then `386`; for
//! `arm64` (`v8`, or `v9.x`, which also accepts the matching `v8.x`) the older minor
//! variants, then `arm/v8` down to `arm/v5`. Platforms are compared after containerd's
//! normalization (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm` is `arm/v7`, ...).
//!
//! Entries of an index without a platform are candidates after every matching entry;
//! attestation manifests (`vnd.docker.reference.type: attestation-manifest`, platform
//! `unknown/unknown`) are never chosen.

use kiln_graph::Platform;

use crate::manifest::Descriptor;

/// The annotation BuildKit puts on attestation manifests in an index.
pub(crate) const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
pub(crate) const ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// An ordered list of acceptable platforms, best first.
#[derive(Debug, Clone)]
pub(crate) struct PlatformMatcher {
    accepted: Vec<Platform>,
}

impl PlatformMatcher {
    pub(crate) fn new(wanted: &Platform) -> PlatformMatcher {
        PlatformMatcher {
            accepted: fallback_vector(&normalize(wanted)),
        }
    }

    /// How good `candidate` is: 0 is an exact match, larger is a worse fallback,
    /// `None` is not acceptable.
    pub(crate) fn rank(&self, candidate: &Platform) -> Option<usize> {
        let candidate = normalize(candidate);
        self.accepted.iter().position(|p| *p == candidate)
    }

    pub(crate) fn matches(&self, candidate: &Platform) -> bool {
        self.rank(candidate).is_some()
    }
}

/// Whether an index entry is an attestation manifest rather than an image.
pub(crate) fn is_attestation(descriptor: &Descriptor) -> bool {
    descriptor
        .annotations
        .get(REFERENCE_TYPE_ANNOTATION)
        .is_some_and(|v| v == ATTESTATION_MANIFEST)
}

/// The index entries that may hold an image for the matcher's platform, best first:
/// matching entries by rank (ties keep index order), then entries without a platform.
pub(crate) fn candidates<'a>(
    manifests: &'a [Descriptor],
    matcher: &PlatformMatcher,
) -> Vec<&'a Descriptor> {
    let mut ranked: Vec<(usize, &Descriptor)> = manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .filter_map(|d| match &d.platform {
            Some(p) => matcher.rank(p).map(|rank| (rank, d)),
            None => Some((usize::MAX, d)),
        })
        .collect();
    // A stable sort keeps the index's order among equally good entries, as containerd.
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, d)| d).collect()
}

/// The platforms an index offers (attestations left out), for error messages.
pub(crate) fn available(manifests: &[Descriptor]) -> Vec<String> {
    manifests
        .iter()
        .filter(|d| !is_attestation(d))
        .map(|d| match &d.platform {
            Some(p) => p.to_string(),
            None => format!("{} (no platform)", d.digest),
        })
        .collect()
}

/// containerd's `Normalize`: lower-case, canonical architecture names and variants.
pub(crate) fn normalize(platform: &Platform) -> Platform {
    let os = platform.os.to_ascii_lowercase();
    let os = if os == "macos" { "darwin".into() } else { os };
    let arch = platform.architecture.to_ascii_lowercase();
    let variant = platform
        .variant
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (architecture, variant): (&str, String) = match arch.as_str() {
        "i386" => ("386", String::new()),
        "x86_64" | "x86-64" | "amd64" => (
            "amd64",
            if variant == "v1" {
                String::new()
            } else {
                variant
            },
        ),
        "aarch64" | "arm64" => (
            "arm64",
            match variant.as_str() {
                "8" | "v8" | "v8.0" => String::new(),
                "9" | "9.0" | "v9.0" => "v9".into(),
                _ => variant,
            },
        ),
        "armhf" => ("arm", "v7".into()),
        "armel" => ("arm", "v6".into()),
        "arm" => (
            "arm",
            match variant.as_str() {
                "" | "7" => "v7".into(),
                "5" | "6" | "8" => format!("v{variant}"),
                _ => variant,
            },
        ),
        other => (other, variant),
    };
    Platform {
        os,
        architecture: architecture.to_string(),
        variant: (!variant.is_empty()).then_some(variant),
    }
}

/// containerd's `platformVector`: the platform and the ones it can run, best first,
/// each normalized.
fn fallback_vector(platform: &Platform) -> Vec<Platform> {
    let with = |architecture: &str, variant: Option<String>| {
        normalize(&Platform {
            os: platform.os.clone(),
            architecture: architecture.to_string(),
            variant,
        })
    };
    let variant = platform.variant.as_deref().unwrap_or_default();
    let version = |v: &str| v.strip_prefix('v').unwrap_or(v).parse::<u32>().ok();
    let mut vector = Vec::new();
    match platform.architecture.as_str() {
        "amd64" => {
            vector.push(platform.clone());
            if let Some(level) = version(variant).filter(|l| *l > 1) {
                vector.extend(
                    (1..level)
                        .rev()
                        .map(|l| with("amd64", Some(format!("v{l}")))),
                );
            }
            vector.push(with("386", None));
        }
        "arm" => {
            vector.push(platform.clone());
            if let Some(level) = version(variant).filter(|l| *l > 5) {
                vector.extend((5..level).rev().map(|l| with("arm", Some(format!("v{l}")))));
            }
        }
        "arm64" => {
            let variant = if variant.is_empty() { "v8" } else { variant };
            // containerd matches nothing for a variant outside its table; accepting
            // the platform itself is the least surprising reading of that case.
            let Some(majors) = arm64_versions(variant) else {
                return vec![platform.clone()];
            };
            for (major, top_minor) in majors {
                for minor in (0..=top_minor).rev() {
                    let v = if minor == 0 {
                        format!("v{major}")
                    } else {
                        format!("v{major}.{minor}")
                    };
                    vector.push(with("arm64", Some(v)));
                }
            }
            let arm_variant = if variant.starts_with("v8") || variant.starts_with("v9") {
                "v8"
            } else {
                variant
            };
            vector.extend(fallback_vector(&with("arm", Some(arm_variant.to_string()))));
        }
        _ => vector.push(platform.clone()),
    }
    vector
}

/// For an arm64 variant, the (major, highest minor) pairs it accepts, best first:
/// `v9.x` also runs `v8.(x+5)` (capped at 9), as in containerd's table.
fn arm64_versions(variant: &str) -> Option<Vec<(u32, u32)>> {
    let rest = variant.strip_prefix('v')?;
    let (major, minor) = match rest.split_once('.') {
        Some((major, minor)) => (major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?),
        None => (rest.parse::<u32>().ok()?, 0),
    };
    match (major, minor) {
        (8, 0..=9) => Some(vec![(8, minor)]),
        (9, 0..=7) => Some(vec![(9, minor), (8, (minor + 5).min(9))]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use kiln_graph::Digest;

    fn p(s: &str) -> Platform {
        let mut parts = s.split('/');
        Platform {
            os: parts.next().unwrap_or_default().to_string(),
            architecture: parts.next().unwrap_or_default().to_string(),
            variant: parts.next().map(str::to_string),
        }
    }

    fn accepted(wanted: &str) -> Vec<String> {
        PlatformMatcher::new(&p(wanted))
            .accepted
            .iter()
            .map(|p| p.to_string())
            .collect()
    }

    fn entry(n: u8, platform: Option<&str>) -> Descriptor {
        Descriptor {
            media_type: crate::media_type::OCI_MANIFEST.to_string(),
            digest: Digest::of(&[n]),
            size: 100,
            platform: platform.map(p),
            annotations: BTreeMap::new(),
            urls: Vec::new(),
        }
    }

    fn attestation(n: u8, of: &Descriptor) -> Descriptor {
        let mut d = entry(n, Some("unknown/unknown"));
        d.annotations.insert(
            REFERENCE_TYPE_ANNOTATION.into(),
            ATTESTATION_MANIFEST.into(),
        );
        d.annotations
            .insert("vnd.docker.reference.digest".into(), of.digest.to_string());
        d
    }

    fn pick<'a>(manifests: &'a [Descriptor], wanted: &str) -> Option<&'a Descriptor> {
        candidates(manifests, &PlatformMatcher::new(&p(wanted)))
            .first()
            .copied()
    }

    #[test]
    fn fallback_vectors_follow_containerd() {
        assert_eq!(accepted("linux/amd64"), ["linux/amd64", "linux/386"]);
        assert_eq!(
            accepted("linux/amd64/v3"),
            [
                "linux/amd64/v3",
                "linux/amd64/v2",
                "linux/amd64",
                "linux/386"
            ]
        );
        assert_eq!(
            accepted("linux/arm/v7"),
            ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
        );
        assert_eq!(accepted("linux/arm"), accepted("linux/arm/v7"));
        assert_eq!(accepted("linux/arm/v5"), ["linux/arm/v5"]);
        assert_eq!(
            accepted("linux/arm64"),
            [
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        assert_eq!(accepted("linux/aarch64/v8"), accepted("linux/arm64"));
        assert_eq!(
            accepted("linux/arm64/v8.2"),
            [
                "linux/arm64/v8.2",
                "linux/arm64/v8.1",
                "linux/arm64",
                "linux/arm/v8",
                "linux/arm/v7",
                "linux/arm/v6",
                "linux/arm/v5"
            ]
        );
        let v9 = accepted("linux/arm64/v9.1");
        assert_eq!(
            &v9[..3],
            ["linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6"]
        );
        assert!(v9.contains(&"linux/arm64".to_string()));
        assert_eq!(accepted("linux/s390x"), ["linux/s390x"]);
        assert_eq!(accepted("windows/amd64"), ["windows/amd64", "windows/386"]);
    }

    #[test]
    fn normalization_makes_spellings_equal() {
        let m = PlatformMatcher::new(&p("linux/amd64"));
        assert!(m.matches(&p("linux/x86_64")));
        assert!(m.matches(&p("Linux/AMD64")));
        assert!(m.matches(&p("linux/amd64/v1")));
        assert!(!m.matches(&p("linux/amd64/v2")));
        assert!(!m.matches(&p("linux/arm64")));
        let arm = PlatformMatcher::new(&p("linux/armhf"));
        assert_eq!(arm.rank(&p("linux/arm")), Some(0));
        assert_eq!(arm.rank(&p("linux/armel")), Some(1));
    }

    #[test]
    fn exact_match_wins_over_index_order() {
        let index = [
            entry(1, Some("linux/arm/v5")),
            entry(2, Some("linux/arm/v6")),
            entry(3, Some("linux/arm/v7")),
            entry(4, Some("linux/amd64")),
        ];
        assert_eq!(
            pick(&index, "linux/arm/v7").unwrap().digest,
            index[2].digest
        );
        assert_eq!(
            pick(&index, "linux/arm/v6").unwrap().digest,
            index[1].digest
        );
        assert_eq!(pick(&index, "linux/amd64").unwrap().digest, index[3].digest);
    }

    #[test]
    fn older_variants_are_fallbacks_best_first() {
        let index = [
            entry(1, Some("linux/arm/v5")),
            entry(2, Some("linux/arm/v6")),
        ];
        let got: Vec<_> = candidates(&index, &PlatformMatcher::new(&p("linux/arm/v7")))
            .into_iter()
            .map(|d| d.digest.clone())
            .collect();
        assert_eq!(got, [index[1].digest.clone(), index[0].digest.clone()]);
        // A newer variant is never a fallback.
        assert!(pick(&[entry(1, Some("linux/arm/v7"))], "linux/arm/v6").is_none());
        // arm64 runs arm images when there is no arm64 one.
        let arm_only = [
            entry(1, Some("linux/arm/v7")),
            entry(2, Some("linux/ppc64le")),
        ];
        assert_eq!(
            pick(&arm_only, "linux/arm64").unwrap().digest,
            arm_only[0].digest
        );
        // amd64/v3 takes v2 before plain amd64.
        let amd = [
            entry(1, Some("linux/amd64")),
            entry(2, Some("linux/amd64/v2")),
        ];
        assert_eq!(pick(&amd, "linux/amd64/v3").unwrap().digest, amd[1].digest);
        assert_eq!(pick(&amd, "linux/amd64").unwrap().digest, amd[0].digest);
    }

    #[test]
    fn attestation_manifests_are_never_chosen() {
        let amd64 = entry(1, Some("linux/amd64"));
        let arm64 = entry(2, Some("linux/arm64"));
        let index = [
            attestation(3, &amd64),
            amd64.clone(),
            attestation(4, &arm64),
            arm64.clone(),
        ];
        assert_eq!(pick(&index, "linux/amd64").unwrap().digest, amd64.digest);
        assert_eq!(pick(&index, "linux/arm64").unwrap().digest, arm64.digest);
        assert!(pick(&index, "unknown/unknown").is_none());
        // Even an attestation without a platform is skipped.
        let mut bare = attestation(5, &amd64);
        bare.platform = None;
        assert!(pick(&[bare.clone()], "linux/amd64").is_none());
        assert_eq!(available(&[bare, amd64.clone()]), ["linux/amd64"]);
    }

    #[test]
    fn entries_without_platform_come_last() {
        let index = [
            entry(1, None),
            entry(2, Some("linux/arm/v6")),
            entry(3, Some("linux/s390x")),
        ];
        let got: Vec<_> = candidates(&index, &PlatformMatcher::new(&p("linux/arm/v7")))
            .into_iter()
            .map(|d| d.digest.clone())
            .collect();
        assert_eq!(got, [index[1].digest.clone(), index[0].digest.clone()]);
        assert_eq!(pick(&index, "linux/s390x").unwrap().digest, index[2].digest);
    }

    #[test]
    fn no_match_yields_nothing_and_lists_what_there_is() {
        let index = [
            entry(1, Some("linux/amd64")),
            entry(2, Some("linux/arm64/v8")),
        ];
        assert!(pick(&index, "linux/s390x").is_none());
        assert_eq!(available(&index), ["linux/amd64", "linux/arm64/v8"]);
    }
}
