//! An `im_regmon` block as a [`Scope`]: its patterns checked, its hive
//! mounts checked against each other, and the canonical texts that tell a
//! baseline whether it still fits (see the baseline's rebuild rules).

use super::{Capture, Pace, Schema, Scope};
use crate::path::pattern::{same_name, Excludes, Pattern, Root};
use crate::source::image::{self, Image, ImageSource, Profile};
use crate::source::{Mount, Source};
use nxconf::Module;
use std::path::Path;

/// `MaxDataSize` when not given: bytes of data kept per value with `ReportData`.
const DEFAULT_MAX_DATA_SIZE: u64 = 4096;

/// What [`scope_of`] finds for an input.
pub struct ScopeOf {
    pub scope: Scope,
    pub scope_key: String,
    pub data_key: String,
    pub schema: Schema,
}

/// An input's scope, the canonical texts of its scope and data settings
/// (for detecting changes), and its event schema.
pub fn scope_of(
    m: &Module,
    rm: &nxconf::ImRegmon,
    config_dir: &Path,
) -> Result<ScopeOf, Vec<String>> {
    let mut errors = Vec::new();
    let at = |loc: &nxconf::Location, msg: String| format!("{}:{}: {msg}", loc.file, loc.line);
    let mut patterns = Vec::new();
    for p in &rm.reg_values {
        match Pattern::parse(&p.pattern) {
            Ok(x) => patterns.push(x),
            Err(e) => errors.push(at(&p.location, format!("RegValue {e}"))),
        }
    }
    let mut excludes = Vec::new();
    for p in &rm.excludes {
        match Pattern::parse(&p.pattern) {
            Ok(x) => excludes.push(x),
            Err(e) => errors.push(at(&p.location, format!("Exclude {e}"))),
        }
    }
    let mut never = Vec::new();
    for p in &rm.no_data_for {
        match Pattern::parse(&p.pattern) {
            Ok(x) => never.push(x),
            Err(e) => errors.push(at(&p.location, format!("NoDataFor {e}"))),
        }
    }
    let schema = match rm.schema.as_deref().map(Schema::parse) {
        None => Schema::Nxlog,
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            errors.push(at(&m.location, format!("input '{}': {e}", m.name)));
            Schema::Nxlog
        }
    };
    let capture = rm.report_data.then(|| Capture {
        max: rm.max_data_size.unwrap_or(DEFAULT_MAX_DATA_SIZE) as usize,
        never: Excludes::new(&never),
    });
    let mut mounts: Vec<Mount> = Vec::new();
    let mut mount_lines: Vec<&nxconf::Location> = Vec::new();
    for h in &rm.hive_files {
        let file = config_dir.join(&h.path);
        match Mount::parse(&h.key, file, !h.no_logs) {
            Ok(x) => {
                // Two hives at one place, or one inside another: one of them
                // would hide (part of) the other.
                for (other, loc) in mounts.iter().zip(&mount_lines) {
                    if let Some(how) = x.clash(other) {
                        errors.push(at(
                            &h.location,
                            format!(
                                "HiveFile '{}' is mounted at {how} HiveFile '{}' at {}:{}; \
                                 each hive needs its own key, neither inside another",
                                x.display(),
                                other.display(),
                                loc.file,
                                loc.line
                            ),
                        ));
                    }
                }
                mounts.push(x);
                mount_lines.push(&h.location);
            }
            Err(e) => errors.push(at(&h.location, e)),
        }
    }
    // `WindowsImage`: its hives as found now; found again at each scan.
    let image = rm.windows_image.as_ref().and_then(|w| {
        let img = Image {
            dir: config_dir.join(&w.pattern),
            exclude_classes: rm.exclude_classes,
        };
        match img.discover() {
            Ok(found) => Some((w, img, found)),
            Err(e) => {
                errors.push(at(
                    &w.location,
                    format!("WindowsImage '{}': {e}", w.pattern),
                ));
                None
            }
        }
    });
    if let Some((w, _, found)) = &image {
        // A HiveFile line where the image mounts a hive (or would, were it
        // there): which of the two to read is not for regmon to guess.
        for (h, loc) in mounts.iter().zip(&mount_lines) {
            for m in found.mounts.iter().chain(&found.missing) {
                if let Some(how) = h.clash(m) {
                    errors.push(at(
                        loc,
                        format!(
                            "HiveFile '{}' is mounted at {how} {} of WindowsImage '{}' ({}:{}); \
                             each hive needs its own key, neither inside another",
                            h.display(),
                            m.display(),
                            w.pattern,
                            w.location.file,
                            w.location.line
                        ),
                    ));
                }
            }
        }
    }
    let user = rm.user.as_ref().and_then(|u| {
        let name = u.pattern.trim();
        let r = match (&image, rm.windows_image.is_some()) {
            (Some((_, _, found)), _) => resolve_user(name, &found.profiles),
            // The image's own error is reported already.
            (None, true) => return None,
            (None, false) if mounts.is_empty() => Err(format!(
                "User '{name}' applies to offline hives (WindowsImage or HiveFile); \
                 a live input reads the HKCU of the account regmon runs as"
            )),
            (None, false) if image::looks_like_sid(name) => Ok(name.to_string()),
            (None, false) => Err(format!(
                "User '{name}' is not a SID; without a WindowsImage (whose ProfileList maps \
                 profile names to SIDs) write the SID, e.g. User 'S-1-5-21-1004336348-1177238915-682003330-1001'"
            )),
        };
        r.map_err(|e| errors.push(at(&u.location, e))).ok()
    });
    // HKCU offline is the hive of one user: in an image of many, whose?
    let hkcu_mounted = mounts.iter().any(|m| m.root == Root::Hkcu);
    if let (Some((_, _, found)), None, false) = (&image, &rm.user, hkcu_mounted) {
        let kinds = [
            ("RegValue", &rm.reg_values),
            ("Exclude", &rm.excludes),
            ("NoDataFor", &rm.no_data_for),
        ];
        for (kind, list) in kinds {
            for p in list
                .iter()
                .filter(|p| root_of(&p.pattern) == Some(Root::Hkcu))
            {
                errors.push(at(
                    &p.location,
                    format!(
                        "{kind} '{}': HKCU in an image is whose? add User 'SID or profile name'; \
                         profiles: {}",
                        p.pattern,
                        list_profiles(&found.profiles)
                    ),
                ));
            }
        }
    }
    let all_mounts: Vec<Mount> = match &image {
        Some((_, _, found)) => image::combine(&mounts, found.mounts.clone()).0,
        None => mounts.clone(),
    };
    if all_mounts.is_empty() && image.is_none() && rm.windows_image.is_none() && !cfg!(windows) {
        errors.push(at(
            &m.location,
            format!(
                "input '{}' has no HiveFile: the live registry can only be read on Windows; \
                 map hive files with e.g. HiveFile 'HKLM\\SOFTWARE' '/mnt/win/Windows/System32/config/SOFTWARE', \
                 or a whole Windows volume with WindowsImage '/mnt/win'",
                m.name
            ),
        ));
    }
    // Roots a pattern can reach offline: the mounted ones, and the views
    // built over them (HKCU = HKU\<User>, HKCR and HKCC over HKLM).
    let mut reachable: Vec<Root> = all_mounts.iter().map(|mt| mt.root).collect();
    if reachable.contains(&Root::Hklm) {
        reachable.extend([Root::Hkcr, Root::Hkcc]);
    }
    if reachable.contains(&Root::Hku) && user.is_some() {
        reachable.extend([Root::Hkcu, Root::Hkcr]);
    }
    for p in &patterns {
        if !all_mounts.is_empty() && !reachable.contains(&p.root) {
            tracing::warn!(
                "input '{}': RegValue '{}' is under no HiveFile mapping; it matches nothing",
                m.name,
                p.text
            );
        }
    }
    crate::path::pattern::note_recursive(&m.name, &patterns, rm.recursive);
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some((_, img, found)) = &image {
        // What the image holds now (each scan finds it again and warns of
        // what is missing then).
        let at: Vec<String> = found.mounts.iter().map(Mount::display).collect();
        tracing::info!(
            "input '{}': WindowsImage {}: {} hives mounted ({}){}",
            m.name,
            img.dir.display(),
            at.len(),
            at.join(", "),
            match (&rm.user, &user) {
                (Some(u), Some(sid)) => format!("; User '{}' is {sid}", u.pattern.trim()),
                _ => String::new(),
            }
        );
    }
    // One line per setting, `kind:text`, lists sorted and without repeats
    // (a repeated line watches nothing more). Baselines written before
    // these texts were split keep this exact form (see baseline's v1_scope).
    let mut key_parts: Vec<String> = Vec::new();
    let mut pats: Vec<String> = patterns
        .iter()
        .map(|p| format!("value:{}", upper(&p.text)))
        .collect();
    pats.sort();
    pats.dedup();
    key_parts.extend(pats);
    let mut ex: Vec<String> = excludes
        .iter()
        .map(|p| format!("exclude:{}", upper(&p.text)))
        .collect();
    ex.sort();
    ex.dedup();
    key_parts.extend(ex);
    let mut mt: Vec<String> = mounts
        .iter()
        .map(|m| {
            format!(
                "hive:{}={}:{}",
                upper(&m.display()),
                m.file.display(),
                m.use_logs
            )
        })
        .collect();
    mt.sort();
    key_parts.extend(mt);
    // Only when set: older baselines keep their scope text. The image is
    // named by its folder, not its files: a user added is no new scope.
    if let Some((_, img, _)) = &image {
        key_parts.push(format!("image:{}", img.dir.display()));
    }
    if let Some(sid) = &user {
        key_parts.push(format!("user:{}", upper(sid)));
    }
    if rm.exclude_classes {
        key_parts.push("classes:excluded".to_string());
    }
    key_parts.push(format!("recursive:{}", rm.recursive));
    // `both` only when set: older baselines keep their scope text.
    if rm.both_views {
        key_parts.push("64bit:both".to_string());
    } else {
        key_parts.push(format!("64bit:{}", rm.view_64bit));
    }
    key_parts.push(format!("digest:{}", rm.digest.config_name()));
    // What the baseline keeps beside digests.
    let mut data_parts: Vec<String> = Vec::new();
    if let Some(c) = &capture {
        let mut nd: Vec<String> = never
            .iter()
            .map(|p| format!("nodata:{}", upper(&p.text)))
            .collect();
        nd.sort();
        nd.dedup();
        data_parts.push(format!("data:{}", c.max));
        data_parts.extend(nd);
    }
    Ok(ScopeOf {
        scope: Scope {
            patterns,
            excludes: Excludes::new(&excludes),
            recursive: rm.recursive,
            view64: rm.view_64bit,
            both_views: rm.both_views,
            user,
            exclude_classes: rm.exclude_classes,
            digest: rm.digest,
            // The one place the source is decided: an image, HiveFile
            // lines, or neither.
            source: match image {
                Some((_, image, _)) => Source::Image(Box::new(ImageSource {
                    image,
                    hive_files: mounts,
                    at_load: all_mounts,
                })),
                None if mounts.is_empty() => Source::Live,
                None => Source::Hives(mounts),
            },
            capture,
            key_events: rm.key_events,
            incremental: rm.incremental,
            pace: Pace {
                rate: rm.scan_rate,
                low_priority: rm.low_priority,
            },
            hints: None,
        },
        scope_key: key_parts.join("\n"),
        data_key: data_parts.join("\n"),
        schema,
    })
}

/// A name or pattern upper-cased as names compare (see
/// [`crate::path::pattern::same_name`]): two texts that match the same
/// names have the same canonical text.
fn upper(s: &str) -> String {
    String::from_utf16_lossy(&hive::upcase_str(s))
}

/// The root a pattern's text starts with.
fn root_of(pattern: &str) -> Option<Root> {
    pattern.split('\\').next().and_then(Root::parse)
}

/// The SID `User` names in an image: a SID of its ProfileList, or the
/// folder name of one profile (both case-insensitive).
fn resolve_user(name: &str, profiles: &[Profile]) -> Result<String, String> {
    let by_sid = profiles.iter().find(|p| same_name(&p.sid, name));
    let by_name: Vec<&Profile> = profiles
        .iter()
        .filter(|p| same_name(&p.name, name))
        .collect();
    let p = match (by_sid, by_name.as_slice()) {
        (Some(p), _) => p,
        (None, [p]) => *p,
        (None, []) => {
            return Err(format!(
                "User '{name}' is no profile of the image (profiles: {})",
                list_profiles(profiles)
            ))
        }
        (None, many) => {
            return Err(format!(
                "User '{name}' names several profiles ({}); write the SID",
                list_profiles(&many.iter().map(|p| (*p).clone()).collect::<Vec<_>>())
            ))
        }
    };
    if same_name(&p.sid, image::LOCAL_SYSTEM) {
        return Err(format!(
            "User '{name}' is LocalSystem ({}), whose hive Windows shows as HKU\\.DEFAULT; \
             write patterns under HKU\\.DEFAULT instead",
            image::LOCAL_SYSTEM
        ));
    }
    Ok(p.sid.clone())
}

/// `alice (S-1-5-21-...-1001), bob (...)` for messages: at most 20.
fn list_profiles(profiles: &[Profile]) -> String {
    const SHOWN: usize = 20;
    if profiles.is_empty() {
        return "none found".into();
    }
    let mut s: Vec<String> = profiles
        .iter()
        .take(SHOWN)
        .map(|p| format!("{} ({})", p.name, p.sid))
        .collect();
    if profiles.len() > SHOWN {
        s.push(format!("and {} more", profiles.len() - SHOWN));
    }
    s.join(", ")
}
