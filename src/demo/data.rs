//! Deterministic, realistic demo content: user documents, conference content and
//! CMS configuration documents.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use serde_json::json;

const FIRST: [&str; 24] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "ken",
    "lena", "mallory", "nina", "oscar", "peggy", "quinn", "rupert", "sybil", "trent", "ursula",
    "victor", "wendy", "yusuf",
];
const LAST: [&str; 16] = [
    "ackerman", "barnes", "chen", "diaz", "evans", "fischer", "garcia", "hughes", "ito", "jensen",
    "kowalski", "lopez", "muller", "nakamura", "okafor", "patel",
];
const STATES: [&str; 6] = [
    "Online",
    "Away",
    "Busy",
    "DoNotDisturb",
    "BeRightBack",
    "Offline",
];
const GROUPS: [&str; 5] = [
    "Favorites",
    "Team",
    "Project Falcon",
    "Managers",
    "Other Contacts",
];
const CONTENT: [(&str, &str); 6] = [
    ("slides", "pptx"),
    ("handout", "pdf"),
    ("whiteboard", "wbd"),
    ("poll", "xml"),
    ("recording-notes", "docx"),
    ("attachment", "zip"),
];

/// A seeded random source for one pool and purpose.
pub(super) fn rng(pool: &str, purpose: &str, round: u64) -> ChaCha8Rng {
    let h = blake3::hash(format!("{pool}|{purpose}|{round}").as_bytes());
    let mut seed = [0u8; 32];
    seed.copy_from_slice(h.as_bytes());
    ChaCha8Rng::from_seed(seed)
}

pub(super) fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 { 0 } else { rng.next_u64() % n }
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[below(rng, items.len() as u64) as usize]
}

/// The SIP user name of user `index` of a pool.
pub(super) fn user_name(pool: &str, index: u64) -> String {
    let mut r = rng(pool, "name", index);
    let site = pool.split('-').next().unwrap_or("x");
    format!(
        "{}.{}{}{index}",
        pick(&mut r, &FIRST),
        pick(&mut r, &LAST),
        site
    )
}

/// The item path (inside the `PresenceFocus` module) of user `index`.
pub(super) fn user_path(pool: &str, index: u64) -> String {
    format!(
        "users/{:04}/sip_{}@litwareinc.com.json",
        index / 50,
        user_name(pool, index)
    )
}

/// A user document (JSON): SIP URI, presence, contacts in groups, conferences.
pub(super) fn user_document(pool: &str, index: u64, revision: u64, users: u64) -> Vec<u8> {
    let mut r = rng(pool, "user", index * 1_000_003 + revision);
    let contacts: Vec<_> = (0..=below(&mut r, 12))
        .map(|_| {
            let other = below(&mut r, users.max(1));
            json!({
                "uri": format!("sip:{}@litwareinc.com", user_name(pool, other)),
                "group": pick(&mut r, &GROUPS),
            })
        })
        .collect();
    let conferences: Vec<_> = (0..below(&mut r, 4))
        .map(|_| json!({"conference_id": format!("{:08X}", r.next_u32()), "role": "organizer"}))
        .collect();
    let doc = json!({
        "sip_uri": format!("sip:{}@litwareinc.com", user_name(pool, index)),
        "home_pool": pool,
        "revision": revision,
        "presence": {
            "state": pick(&mut r, &STATES),
            "note": format!("note {}", r.next_u32() % 1000),
            "last_active": format!("2026-11-{:02}T{:02}:{:02}:00Z", 1 + below(&mut r, 25), below(&mut r, 24), below(&mut r, 60)),
        },
        "contact_groups": GROUPS,
        "contacts": contacts,
        "conference_directory": conferences,
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

/// Path and size of conference content file `index` of a pool: sizes spread
/// log-uniformly from 4 KiB to 6 MiB.
pub(super) fn conference_file(pool: &str, index: u64, revision: u64) -> (String, u64) {
    let mut r = rng(pool, "conf", index * 1_000_003 + revision);
    let (stem, ext) = CONTENT[below(&mut r, CONTENT.len() as u64) as usize];
    let exp = (r.next_u64() % 10_000) as f64 / 10_000.0;
    let size = (4096.0 * (1536f64).powf(exp)) as u64;
    let conf = format!("{:08X}", rng(pool, "confid", index).next_u32());
    (format!("conferences/{conf}/{stem}-{index}.{ext}"), size)
}

/// Pseudo-random file content of `size` bytes.
pub(super) fn content_bytes(pool: &str, path: &str, revision: u64, size: u64) -> Vec<u8> {
    let mut r = rng(pool, path, revision);
    let mut bytes = vec![0u8; size as usize];
    r.fill_bytes(&mut bytes);
    bytes
}

/// The CMS configuration documents (path, content) of the CMS master.
pub(super) fn cms_documents(deployment_text: &str) -> Vec<(String, Vec<u8>)> {
    let mut docs = vec![(
        "xds/topology.toml".to_string(),
        deployment_text.as_bytes().to_vec(),
    )];
    for (name, body) in [
        (
            "policies/client-policy.xml",
            "<ClientPolicy Identity=\"Global\" EnableAppearOffline=\"true\" MaximumNumberOfContacts=\"1000\"/>",
        ),
        (
            "policies/conferencing-policy.xml",
            "<ConferencingPolicy Identity=\"Global\" AllowIPAudio=\"true\" MaxMeetingSize=\"250\"/>",
        ),
        (
            "policies/external-access-policy.xml",
            "<ExternalAccessPolicy Identity=\"Global\" EnableFederationAccess=\"false\"/>",
        ),
        (
            "config/backup-service.xml",
            "<BackupServiceConfiguration SyncInterval=\"00:02:00\"/>",
        ),
        (
            "config/registrar.xml",
            "<RegistrarConfiguration Identity=\"Global\" MinEndpointExpiration=\"300\"/>",
        ),
        (
            "config/user-services.xml",
            "<UserServicesConfiguration Identity=\"Global\" MaintenanceTimeOfDay=\"01:00\"/>",
        ),
        (
            "config/web-services.xml",
            "<WebServiceConfiguration Identity=\"Global\" UseWindowsAuth=\"Ntlm\"/>",
        ),
        (
            "certificates/inventory.json",
            "{\"certificates\": [{\"use\": \"Default\", \"expires\": \"2027-06-30\"}]}",
        ),
    ] {
        docs.push((name.to_string(), format!("{body}\n").into_bytes()));
    }
    docs
}
