//! One folder pair: scan → index → plan → apply, repeated until nothing is
//! left to do (or only deferred/failed items remain).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use kluis_format::{Header, Identity};

use crate::error::{ItemError, ItemErrorKind, SyncError};
use crate::exec::{self, Activity, Exec};
use crate::folder_meta::{DirectoryView, FOLDER_META_FILE, FolderMeta, MemberChange};
use crate::index::Index;
use crate::names::NameCipher;
use crate::plan::{self, Guard, PlanInput};
use crate::scan::{self, Ignore, Kind, Skip};

/// A clock, passed in so tests can drive time.
pub trait Clock {
    /// Nanoseconds since the Unix epoch.
    fn now_ns(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ns(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    }
}

/// Settings of one folder pair.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The plaintext folder.
    pub plain: PathBuf,
    /// The encrypted mirror (inside the sync folder).
    pub mirror: PathBuf,
    /// The index database file.
    pub index_path: PathBuf,
    /// This device's name (conflict copies).
    pub device: String,
    /// Quiet period before a changed file is picked up.
    pub quiet: Duration,
    /// fsync files and directories (off only for benchmarks).
    pub fsync: bool,
    /// Fewest deletions that can trip the mass-deletion guard.
    pub mass_delete_min: usize,
    /// Deletions wait until no new one has appeared for this long, so that
    /// the guard judges a wave of them whole.
    pub deletion_quiet: Duration,
    /// A ciphertext that fails to authenticate, unchanged, for this long is
    /// damaged rather than still arriving (`crate::damage`).
    pub damaged_after: Duration,
    /// Days plaintext stays in the Kluis trash.
    pub trash_days: u32,
}

impl EngineConfig {
    /// Defaults for a pair.
    pub fn new(plain: PathBuf, mirror: PathBuf, index_path: PathBuf, device: String) -> Self {
        EngineConfig {
            plain,
            mirror,
            index_path,
            device,
            quiet: Duration::from_millis(500),
            fsync: true,
            mass_delete_min: 10,
            deletion_quiet: Duration::from_secs(15),
            damaged_after: Duration::from_secs(60),
            trash_days: 30,
        }
    }
}

/// What one reconcile did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Operations applied.
    pub activity: Vec<Activity>,
    /// Items that failed this round (retried later).
    pub errors: Vec<ItemError>,
    /// Paths skipped on purpose (symlinks, special files, foreign names).
    pub skips: Vec<Skip>,
    /// Set when the plan was withheld; the caller pauses and alerts.
    pub guard: Option<Guard>,
    /// Paths still being written.
    pub deferred: Vec<String>,
    /// Plan again at this time (ns) for deferred paths.
    pub wake_at: Option<i64>,
    /// Number of rounds run.
    pub rounds: usize,
    /// Ciphertext not encrypted to you or your groups: left as it is,
    /// reported as "not shared with you", not an error (docs/SHARING.md).
    pub not_shared: Vec<String>,
    /// Membership changes made before this reconcile's first write, from
    /// the directory view ([`Engine::set_directory`]): departed people
    /// dropped, members moved to their current keys. Also in `activity`
    /// (actions `member_departed` and `member_key_moved`).
    pub membership: Vec<MemberChange>,
}

impl Report {
    /// Whether something is left to retry later.
    pub fn needs_retry(&self) -> bool {
        // A damaged file waits for a change, which the watcher reports.
        self.errors.iter().any(|e| e.kind != ItemErrorKind::Damaged)
    }
}

/// The engine of one folder pair.
pub struct Engine {
    cfg: EngineConfig,
    index: Index,
    meta: Option<FolderMeta>,
    /// Size and mtime of `.kluis-folder` when `meta` was read: a change
    /// (a share or unshare on any device) makes the next reconcile re-read it.
    meta_stat: Option<(u64, i64)>,
    /// Recipients of `meta`, computed once per load.
    recipients: Vec<kluis_format::Recipient>,
    group_keys: Vec<Identity>,
    /// What the directory last said about members; applied at the next
    /// write into the mirror.
    directory: DirectoryView,
    deletions: DeletionGuard,
    damage: crate::damage::DamageTracker,
}

/// What the mass-deletion guard remembers between plans.
#[derive(Debug, Default)]
struct DeletionGuard {
    /// When each pending deletion was first planned (ns).
    seen: HashMap<String, i64>,
    /// Deletions applied: (when, how many), within [`GUARD_WINDOW_NS`].
    applied: VecDeque<(i64, usize)>,
    /// The guard tripped and not everything is back (kept in the index, so
    /// a restart does not let the rest of the deletions through).
    hold: bool,
    /// The deletions of the last plan: what the user sees and confirms.
    last: BTreeSet<String>,
    /// Confirmed by the user for the next reconcile.
    allowed: BTreeSet<String>,
    /// Put back what is missing, once.
    restore: bool,
}

/// The guard adds up the deletions of the last hour.
const GUARD_WINDOW_NS: i64 = 3_600 * 1_000_000_000;
/// Index key of [`DeletionGuard::hold`].
const HOLD_KEY: &str = "deletions_held";

impl DeletionGuard {
    fn recent(&mut self, now: i64) -> usize {
        while self
            .applied
            .front()
            .is_some_and(|(t, _)| *t + GUARD_WINDOW_NS < now)
        {
            self.applied.pop_front();
        }
        self.applied.iter().map(|(_, n)| n).sum()
    }

    /// After a plan: remember when each of its deletions was first seen.
    fn planned(&mut self, deletions: &[String], now: i64) {
        let now_planned: HashSet<&str> = deletions.iter().map(String::as_str).collect();
        self.seen.retain(|p, _| now_planned.contains(p.as_str()));
        for p in deletions {
            self.seen.entry(p.clone()).or_insert(now);
        }
        self.last = deletions.iter().cloned().collect();
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

const MAX_ROUNDS: usize = 6;

impl Engine {
    /// Open the index and remove temp files a killed run left behind. The
    /// caller holds the pair lock.
    pub fn open(cfg: EngineConfig) -> Result<Engine, SyncError> {
        if let Some(d) = cfg.index_path.parent() {
            fs::create_dir_all(d).map_err(SyncError::io("create", d))?;
        }
        let index = Index::open(&cfg.index_path)?;
        let hold = matches!(index.get_kv(HOLD_KEY), Ok(Some(v)) if v == [1]);
        exec::remove_temps(&cfg.plain);
        // Finish header rewrites a crash interrupted (sharing, in place)
        // before the scan reads those files.
        crate::inplace::recover_all(&cfg.mirror);
        exec::remove_temps(&cfg.mirror);
        Ok(Engine {
            cfg,
            index,
            meta: None,
            meta_stat: None,
            recipients: Vec::new(),
            group_keys: Vec::new(),
            directory: DirectoryView::default(),
            deletions: DeletionGuard {
                hold,
                ..DeletionGuard::default()
            },
            damage: Default::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The index (read-only use: status, tests).
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Let the deletions the guard reported last go ahead at the next
    /// reconcile: exactly those (what came back meanwhile is not deleted,
    /// and a deletion that appears later is judged anew).
    pub fn allow_mass_delete_once(&mut self) {
        self.deletions.allowed = self.deletions.last.clone();
    }

    /// At the next reconcile, put back what the guard withheld instead of
    /// deleting it: files missing from the mirror are encrypted again from
    /// the plaintext, files missing from the plaintext folder are decrypted
    /// again from the mirror.
    pub fn restore_missing_once(&mut self) {
        self.deletions.restore = true;
    }

    /// Whether the mass-deletion guard is holding deletions back.
    pub fn deletions_held(&self) -> bool {
        self.deletions.hold
    }

    fn set_hold(&mut self, hold: bool) -> Result<(), SyncError> {
        if self.deletions.hold != hold {
            self.index.set_kv(HOLD_KEY, &[u8::from(hold)])?;
            self.deletions.hold = hold;
        }
        Ok(())
    }

    /// Forget the decrypted folder key (on lock).
    pub fn lock(&mut self) {
        self.meta = None;
        self.meta_stat = None;
        self.group_keys.clear();
    }

    /// The keys of the groups the user belongs to: folders and files shared
    /// with a group are opened with them (docs/SHARING.md).
    pub fn set_group_keys(&mut self, keys: Vec<Identity>) {
        self.group_keys = keys;
        self.meta = None;
        self.meta_stat = None;
    }

    /// What the organisation's directory says about members now (learned by
    /// the caller while online). Before the next reconcile that writes a
    /// file into the mirror, departed people are dropped from the folder's
    /// members and members move to their current verified keys (new
    /// metadata, next epoch), so that file and every later one are
    /// encrypted accordingly (docs/SHARING.md). Kept until replaced.
    pub fn set_directory(&mut self, view: DirectoryView) {
        self.directory = view;
    }

    /// The folder metadata as last read (owner, title, label, members).
    pub fn folder(&self) -> Option<&FolderMeta> {
        self.meta.as_ref()
    }

    /// Load or create the folder metadata; re-read it when the file changed.
    fn folder_meta(
        &mut self,
        identity: &Identity,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<&FolderMeta, SyncError> {
        let path = self.cfg.mirror.join(FOLDER_META_FILE);
        let stat = fs::metadata(&path).ok().map(|m| {
            let s = scan::Stat::from_metadata(&m);
            (s.size, s.mtime)
        });
        if self.meta.is_some() && stat.is_some() && stat != self.meta_stat {
            self.meta = None;
        }
        if self.meta.is_none() {
            let meta_err = |path: &Path, e| match e {
                crate::folder_meta::FolderMetaError::Format(
                    kluis_format::Error::NoMatchingRecipient,
                ) => SyncError::FolderNotShared(self.cfg.mirror.clone()),
                crate::folder_meta::FolderMetaError::Format(source) => SyncError::FolderMeta {
                    path: path.to_owned(),
                    source,
                },
                crate::folder_meta::FolderMetaError::Malformed(reason) => {
                    SyncError::FolderMetaFormat {
                        path: path.to_owned(),
                        reason,
                    }
                }
                other => SyncError::FolderMetaFormat {
                    path: path.to_owned(),
                    reason: if matches!(
                        other,
                        crate::folder_meta::FolderMetaError::UnsupportedVersion(_)
                    ) {
                        "unsupported layout version; update Kluis"
                    } else {
                        "invalid values"
                    },
                },
            };
            let meta = match fs::read(&path) {
                Ok(bytes) => {
                    let mut keys = vec![identity];
                    keys.extend(self.group_keys.iter());
                    FolderMeta::open_any(&bytes, &keys).map_err(|e| meta_err(&path, e))?
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let has_content = fs::read_dir(&self.cfg.mirror)
                        .map_err(SyncError::io("read", &self.cfg.mirror))?
                        .flatten()
                        .any(|e| {
                            !e.file_name()
                                .to_string_lossy()
                                .starts_with(scan::KLUIS_PREFIX)
                        });
                    if has_content {
                        return Err(SyncError::NoFolderMeta(self.cfg.mirror.clone()));
                    }
                    let mut meta = FolderMeta::generate(identity.recipient(), rng);
                    meta.title = self
                        .cfg
                        .plain
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let bytes = meta.seal(rng).map_err(|e| meta_err(&path, e))?;
                    exec::folder::create(&self.cfg.mirror, &bytes)?;
                    meta
                }
                Err(e) => return Err(SyncError::io("read", &path)(e)),
            };
            self.meta_stat = fs::metadata(&path).ok().map(|m| {
                let s = scan::Stat::from_metadata(&m);
                (s.size, s.mtime)
            });
            self.recipients = meta.recipients();
            self.meta = Some(meta);
        }
        self.meta
            .as_ref()
            .ok_or(SyncError::NoFolderMeta(self.cfg.mirror.clone()))
    }

    /// Reconcile both trees until nothing is left to do now.
    pub fn reconcile<R: rand_core::CryptoRng>(
        &mut self,
        identity: &Identity,
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<Report, SyncError> {
        for root in [&self.cfg.plain, &self.cfg.mirror] {
            fs::metadata(root).map_err(SyncError::io("open root", root.as_path()))?;
        }
        if let Err(e) = self.folder_meta(identity, rng) {
            if matches!(e, SyncError::FolderNotShared(_)) {
                // Removed from the folder: forget the old name key too.
                self.meta = None;
                self.meta_stat = None;
            }
            return Err(e);
        }
        let Some(mut meta) = self.meta.take() else {
            return Err(SyncError::NoFolderMeta(self.cfg.mirror.clone()));
        };
        let mut result = self.reconcile_with(identity, &mut meta, clock, rng);
        self.meta = Some(meta);
        if let Ok(rep) = &mut result {
            let (not_shared, errors): (Vec<ItemError>, Vec<ItemError>) =
                std::mem::take(&mut rep.errors)
                    .into_iter()
                    .partition(|e| e.kind == ItemErrorKind::NotSharedWithYou);
            rep.errors = errors;
            rep.not_shared = not_shared.into_iter().map(|e| e.path).collect();
        }
        result
    }

    fn reconcile_with<R: rand_core::CryptoRng>(
        &mut self,
        identity: &Identity,
        meta: &mut FolderMeta,
        clock: &dyn Clock,
        rng: &mut R,
    ) -> Result<Report, SyncError> {
        let names = meta.name_cipher();
        let ignore = Ignore::load(&self.cfg.plain);
        let mut report = Report::default();
        let mut damaged_errors = Vec::new();
        exec::purge_trash(&self.cfg.plain, clock.now_ns(), self.cfg.trash_days);
        for round in 0..MAX_ROUNDS {
            report.rounds = round + 1;
            let index = self.index.load()?;
            // The two trees are scanned at the same time: both are mostly
            // waiting on the kernel, and on two cores it halves the time.
            let (local, remote) = std::thread::scope(|scope| {
                let local = scope.spawn(|| scan::scan_local(&self.cfg.plain, &ignore));
                let remote = scan::scan_remote(&self.cfg.mirror, &names, &mut |_, p| {
                    hashed_name(p, identity, &self.group_keys)
                });
                let local = local
                    .join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("the scan thread failed")));
                (local, remote)
            });
            let local = local.map_err(SyncError::io("scan", &self.cfg.plain))?;
            let mut remote = remote.map_err(SyncError::io("scan", &self.cfg.mirror))?;
            for (p, r) in remote.entries.iter_mut() {
                if r.stat.kind == Kind::File
                    && index
                        .get(p)
                        .is_none_or(|i| i.r_size != r.stat.size || i.r_mtime != r.stat.mtime)
                {
                    r.file_id = scan::read_file_id(&self.cfg.mirror.join(&r.cpath));
                }
            }
            let now = clock.now_ns();
            let recent_deletions = self.deletions.recent(now);
            // Versions this device superseded, among the new mirror files.
            let new_ids: Vec<[u8; 16]> = remote
                .entries
                .iter()
                .filter(|(p, _)| !index.contains_key(*p))
                .filter_map(|(_, r)| r.file_id)
                .collect();
            let superseded = self.index.superseded(&new_ids)?;
            let damaged_after = self.cfg.damaged_after.as_nanos() as i64;
            let damaged = self.damage.damaged(now, damaged_after);
            let members_outdated =
                exec::folder::members_outdated(meta, &self.directory, &self.mine(identity));
            let plan = plan::plan(PlanInput {
                local: &local.entries,
                remote: &remote,
                index: &index,
                now,
                quiet: self.cfg.quiet.as_nanos() as i64,
                mass_delete_min: self.cfg.mass_delete_min,
                allowed_deletions: &self.deletions.allowed,
                hold_deletions: self.deletions.hold,
                deletion_seen: &self.deletions.seen,
                deletion_quiet: self.cfg.deletion_quiet.as_nanos() as i64,
                recent_deletions,
                restore_missing: self.deletions.restore,
                damaged: &damaged,
                superseded: &superseded,
                ignore: &ignore,
                members_outdated,
            });
            self.deletions.planned(&plan.deletions, now);
            // Held until every withheld deletion is back (or confirmed).
            if plan.guard.is_some() {
                self.set_hold(true)?;
            } else if self.deletions.hold && plan.deletions.is_empty() {
                self.set_hold(false)?;
            }
            report.skips = local.skips;
            report.skips.extend(std::mem::take(&mut remote.skips));
            report.deferred = plan.deferred;
            report.wake_at = plan.wake_at;
            report.guard = plan.guard;
            // What failed in an earlier round and is not planned again (in
            // sync by now, or rescanned) is not an error any more.
            report.errors.clear();
            damaged_errors = self
                .damage
                .report(&remote, &local.entries, now, damaged_after);
            if plan.ops.is_empty() {
                break;
            }
            let mut ex = Exec {
                plain: &self.cfg.plain,
                mirror: &self.cfg.mirror,
                names: &names,
                identity,
                group_keys: &self.group_keys,
                recipients: &mut self.recipients,
                folder: exec::folder::Folder {
                    meta: &mut *meta,
                    stat: &mut self.meta_stat,
                    directory: &self.directory,
                    mine: {
                        let mut mine = vec![identity.recipient()];
                        mine.extend(self.group_keys.iter().map(|k| k.recipient()));
                        mine
                    },
                    changes: Vec::new(),
                },
                index: &mut self.index,
                rng: &mut *rng,
                durability: exec::Durability::from_fsync(self.cfg.fsync),
                device: &self.cfg.device,
                now,
            };
            let mut progress = false;
            let mut deleted = 0;
            for op in &plan.ops {
                let results = ex.apply(op)?;
                let changes = std::mem::take(&mut ex.folder.changes);
                report.activity.extend(changes.iter().map(|c| {
                    Activity {
                        action: match c {
                            MemberChange::Departed(_) => "member_departed",
                            MemberChange::KeyMoved { .. } => "member_key_moved",
                        }
                        .into(),
                        path: String::new(),
                        detail: Some(c.to_string()),
                        at: now,
                        ciphertext: None,
                    }
                }));
                report.membership.extend(changes);
                for r in results {
                    if op.is_file_deletion() && r.is_ok() {
                        deleted += 1;
                    }
                    progress |= tally(&mut report, r);
                }
            }
            if deleted > 0 {
                self.deletions.applied.push_back((now, deleted));
            }
            let newly_damaged = self.damage.observe(
                &mut report.errors,
                &remote,
                &local.entries,
                now,
                damaged_after,
            );
            damaged_errors = self
                .damage
                .report(&remote, &local.entries, now, damaged_after);
            let rescan = newly_damaged
                || report
                    .errors
                    .iter()
                    .any(|e| e.kind == ItemErrorKind::ChangedDuringSync);
            if !progress && !rescan {
                break;
            }
            // The watcher reports those changes (and a one-shot sync took
            // its snapshot): skip the two full scans of another round.
            if plan.only_new && report.errors.is_empty() {
                break;
            }
        }
        for e in damaged_errors {
            if !report.errors.iter().any(|x| x.path == e.path) {
                report.errors.push(e);
            }
        }
        // Confirmations and restores are for one reconcile.
        self.deletions.allowed.clear();
        self.deletions.restore = false;
        Ok(report)
    }
}

impl Engine {
    /// The keys this device opens the folder with.
    fn mine<'k>(&'k self, identity: &'k Identity) -> Vec<&'k kluis_format::Recipient> {
        let mut mine = vec![identity.recipient()];
        mine.extend(self.group_keys.iter().map(|k| k.recipient()));
        mine
    }
}

/// The real name of a hashed long file name: from its header metadata.
/// Add one operation's outcome to `report`; true if it did something.
fn tally(report: &mut Report, r: Result<Activity, ItemError>) -> bool {
    match r {
        Ok(a) => {
            report.activity.push(a);
            true
        }
        Err(e) => {
            report.errors.push(e);
            false
        }
    }
}

fn hashed_name(p: &Path, identity: &Identity, group_keys: &[Identity]) -> Option<String> {
    let f = fs::File::open(p).ok()?;
    let mut r = std::io::BufReader::new(f).take(kluis_format::MAX_HEADER_LEN as u64);
    let header = Header::read(&mut r).ok()?;
    let mut keys = vec![identity];
    keys.extend(group_keys.iter());
    let key = crate::keys::unwrap_any(&header, &keys).ok()?;
    header.metadata(&key).ok()?.name
}

/// The name cipher for tests and tools that already hold folder metadata.
pub fn names_of(meta: &FolderMeta) -> NameCipher {
    meta.name_cipher()
}
