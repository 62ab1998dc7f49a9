//! keygen, recipient, encrypt, decrypt, recipients, inspect.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kluis_format::{
    Decryptor, EncryptOptions, Header, Identity, KdfParams, KemChoice, Metadata, Recipient, Refit,
    open_identity, seal_identity,
};

use crate::home::Home;
use crate::output::{Output, open_input, with_progress};
use crate::secret::Passphrases;

#[derive(Debug, Subcommand)]
pub enum CryptCommand {
    /// Generate a new identity (key pair) protected by a passphrase, and print
    /// its recipient string on stdout.
    Keygen {
        /// Where to write the identity (default: the Kluis home).
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace an existing identity file.
        #[arg(long)]
        force: bool,
    },
    /// Print the recipient string (public key) of an identity.
    Recipient {
        #[command(flatten)]
        identity: IdentityArg,
        /// Also print the key id (`4F2A 9C1B …`, 16 bytes: what people
        /// compare) on the next line.
        #[arg(long)]
        key_id: bool,
        /// Also print the whole fingerprint (32 bytes, FORMAT.md §2; the key
        /// id is its first half) on the next line.
        #[arg(long)]
        fingerprint: bool,
    },
    /// Encrypt a file (or stdin) to one or more recipients.
    Encrypt {
        /// A recipient string (`kluis1…`); repeat for several.
        #[arg(short, long = "recipient", value_name = "RECIPIENT")]
        recipients: Vec<String>,
        /// A file with one recipient string per line (`#` starts a comment).
        #[arg(short = 'R', long = "recipients-file", value_name = "FILE")]
        recipients_files: Vec<PathBuf>,
        /// Use the classical X25519 KEM (smaller headers, not post-quantum).
        #[arg(long)]
        classical: bool,
        /// Classification label to record in the encrypted metadata.
        #[arg(long, value_name = "LABEL")]
        label: Option<String>,
        /// Output file (default: stdout). Written atomically.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Input file (default: stdin).
        input: Option<PathBuf>,
    },
    /// Decrypt a Kluis file (or stdin) with an identity.
    Decrypt {
        #[command(flatten)]
        identity: IdentityArg,
        /// Output file (default: stdout). Written atomically: a failed
        /// decryption leaves no output file.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
        /// Input file (default: stdin).
        input: Option<PathBuf>,
    },
    /// Add, remove or list the recipients of a file. Only the header is
    /// rewritten, in place when its padding has room; the encrypted content
    /// is left byte for byte as it was.
    Recipients {
        #[command(subcommand)]
        action: RecipientsAction,
    },
    /// Show what can be known about a Kluis file without any key.
    Inspect {
        /// The file to inspect.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct IdentityArg {
    /// The identity file (default: the one in the Kluis home).
    #[arg(short, long = "identity", value_name = "FILE")]
    identity: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum RecipientsAction {
    /// Give more people access. The header is rewritten in place (same
    /// file, same size) when its padding has room; otherwise the file is
    /// rewritten whole with a larger header, and you are told.
    Add {
        #[command(flatten)]
        identity: IdentityArg,
        /// Recipient strings to add.
        #[arg(short, long = "recipient", value_name = "RECIPIENT", required = true)]
        recipients: Vec<String>,
        /// Use the classical X25519 KEM for the new stanzas. Without it they
        /// use the file's KEM: X25519 for a file encrypted with
        /// `--classical`, X-Wing otherwise.
        #[arg(long)]
        classical: bool,
        /// The Kluis file to change.
        file: PathBuf,
    },
    /// Take access away from future copies of this file (in place, or a
    /// smaller header when much was removed). Copies the person already has
    /// are not affected.
    Remove {
        #[command(flatten)]
        identity: IdentityArg,
        /// Recipient strings, key ids (`4F2A 9C1B …`) or fingerprints to
        /// remove.
        #[arg(short, long = "recipient", value_name = "RECIPIENT", required = true)]
        recipients: Vec<String>,
        /// The Kluis file to change.
        file: PathBuf,
    },
    /// List the key ids of the recipients. With an identity, the header is
    /// authenticated first.
    List {
        #[command(flatten)]
        identity: IdentityArg,
        /// The Kluis file.
        file: PathBuf,
    },
}

pub fn run(cmd: CryptCommand, pass: &Passphrases) -> Result<()> {
    let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
    match cmd {
        CryptCommand::Keygen { output, force } => {
            let path = match output {
                Some(p) => p,
                None => Home::resolve()?.identity(),
            };
            if path.exists() && !force {
                bail!(
                    "{} already exists; use --force to replace it",
                    path.display()
                );
            }
            let passphrase = pass.get("the new identity", true)?;
            let id = Identity::generate(&mut rng);
            let sealed = seal_identity(&id, passphrase.as_bytes(), KdfParams::DEFAULT, &mut rng)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let mut out = Output::open(Some(&path))?;
            out.write_all(&sealed)?;
            restrict_permissions(&out)?;
            out.commit()?;
            println!("{}", id.recipient());
            eprintln!("Identity written to {}", path.display());
            let fp = id.recipient().fingerprint();
            eprintln!(
                "Key id:      {}   (compare it with colleagues)",
                fp.key_id()
            );
            eprintln!("Fingerprint: {}", fp.to_full_string());
            Ok(())
        }
        CryptCommand::Recipient {
            identity,
            key_id,
            fingerprint,
        } => {
            let id = load_identity(&identity, pass)?;
            let fp = id.recipient().fingerprint();
            println!("{}", id.recipient());
            if key_id {
                println!("{}", fp.key_id());
            }
            if fingerprint {
                println!("{}", fp.to_full_string());
            }
            Ok(())
        }
        CryptCommand::Encrypt {
            recipients,
            recipients_files,
            classical,
            label,
            output,
            input,
        } => {
            let to = parse_recipients(&recipients, &recipients_files)?;
            let (reader, len) = open_input(input.as_deref())?;
            let meta = file_metadata(input.as_deref(), len, label)?;
            let opts = EncryptOptions {
                kem: kem(classical),
                ..Default::default()
            };
            let mut out = Output::open(output.as_deref())?;
            #[cfg(unix)]
            if let (Some(path), true) = (input.as_deref(), use_parallel(len, &out)) {
                drop(reader);
                crate::parallel::encrypt_file(path, &mut out, &to, &meta, opts.kem, &mut rng)?;
                return out.commit();
            }
            kluis_format::encrypt(
                with_progress(reader, len),
                &mut out,
                &to,
                &meta,
                opts,
                &mut rng,
            )?;
            out.commit()
        }
        CryptCommand::Decrypt {
            identity,
            output,
            input,
        } => {
            // An identity named with -i is checked before the input is read.
            let named = match identity.identity {
                Some(_) => Some(load_identity(&identity, pass)?),
                None => None,
            };
            let unwrap = |header: &Header| match &named {
                Some(id) => Ok(header.unwrap_file_key(id)?),
                None => unwrap_file_key(header, &identity, pass),
            };
            let (mut reader, len) = open_input(input.as_deref())?;
            let mut out = Output::open(output.as_deref())?;
            #[cfg(unix)]
            if let (Some(path), true) = (input.as_deref(), use_parallel(len, &out)) {
                drop(reader);
                crate::parallel::decrypt_file(path, &mut out, unwrap)?;
                return out.commit();
            }
            let header = Header::read(&mut reader)?;
            let file_key = unwrap(&header)?;
            let mut d = Decryptor::with_file_key(
                with_progress(reader, len),
                header,
                &file_key,
                kluis_format::Backend::default(),
            )?;
            copy_plaintext(&mut d, &mut out)?;
            out.commit()
        }
        CryptCommand::Recipients { action } => recipients_cmd(action, pass, &mut rng),
        CryptCommand::Inspect { file } => inspect(&file),
    }
}

/// Large regular files going to a file are processed on all cores.
#[cfg(unix)]
fn use_parallel(len: Option<u64>, out: &Output) -> bool {
    matches!(out, Output::File { .. })
        && len.is_some_and(|l| l >= crate::parallel::PARALLEL_THRESHOLD)
}

fn kem(classical: bool) -> KemChoice {
    if classical {
        KemChoice::X25519
    } else {
        KemChoice::XWing
    }
}

/// Copy from the decryptor, turning its io errors back into format errors so
/// the message names what failed.
fn copy_plaintext<R: Read>(d: &mut Decryptor<R>, out: &mut Output) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = d.read(&mut buf).map_err(kluis_format::Error::from_io)?;
        if n == 0 {
            return Ok(total);
        }
        out.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The file key of `header`. Without `-i`, a running and unlocked agent
/// unwraps it, so no passphrase and no 64 MiB Argon2id run are needed; when
/// no agent runs or it is locked, the identity file is opened instead.
fn unwrap_file_key(
    header: &Header,
    arg: &IdentityArg,
    pass: &Passphrases,
) -> Result<kluis_format::FileKey> {
    if arg.identity.is_none()
        && let Some(key) = unwrap_with_agent(header)?
    {
        return Ok(key);
    }
    let id = load_identity(arg, pass)?;
    Ok(header.unwrap_file_key(&id)?)
}

/// `Ok(None)` when no agent can help (none runs, or it is locked).
fn unwrap_with_agent(header: &Header) -> Result<Option<kluis_format::FileKey>> {
    use base64::Engine as _;
    use kluis_agent::AgentError;
    use kluis_agent::ipc::{Client, Request, Response};

    let b64 = base64::engine::general_purpose::STANDARD;
    let Ok(home) = kluis_agent::AgentHome::resolve() else {
        return Ok(None);
    };
    let Ok(mut client) = Client::connect(&home.socket_path()) else {
        return Ok(None);
    };
    let req = Request::UnwrapFileKey {
        header: b64.encode(header.to_bytes()),
    };
    match client.call(&req) {
        Ok(Response::FileKey { key }) => {
            let raw = zeroize::Zeroizing::new(
                b64.decode(key.0.as_bytes())
                    .context("the agent sent a malformed key")?,
            );
            let arr: [u8; 32] = raw[..]
                .try_into()
                .context("the agent sent a key of the wrong length")?;
            Ok(Some(kluis_format::FileKey::from_bytes(arr)))
        }
        Ok(other) => bail!("unexpected answer from the agent: {other:?}"),
        Err(AgentError::Remote { code, .. }) if code == "locked" => Ok(None),
        Err(AgentError::Remote { code, .. }) if code == "no_matching_recipient" => {
            Err(kluis_format::Error::NoMatchingRecipient.into())
        }
        Err(e) => Err(e).context("the Kluis agent could not unwrap the file key"),
    }
}

fn load_identity(arg: &IdentityArg, pass: &Passphrases) -> Result<Identity> {
    let path = match &arg.identity {
        Some(p) => p.clone(),
        None => Home::resolve()?.identity(),
    };
    let bytes =
        std::fs::read(&path).with_context(|| format!("cannot read identity {}", path.display()))?;
    // Check the file before asking for a passphrase.
    kluis_format::identity_params(&bytes).with_context(|| format!("{}", path.display()))?;
    let passphrase = pass.get(&format!("{}", path.display()), false)?;
    open_identity(&bytes, passphrase.as_bytes())
        .with_context(|| format!("cannot open identity {}", path.display()))
}

fn parse_recipients(strings: &[String], files: &[PathBuf]) -> Result<Vec<Recipient>> {
    let mut out: Vec<Recipient> = Vec::new();
    let mut push = |s: &str, origin: &str| -> Result<()> {
        // `alice@example.org`: look the key up in the verified directory.
        let r: Recipient = if s.contains('@') && !s.starts_with(kluis_format::RECIPIENT_PREFIX) {
            crate::account_cmds::resolve_email(s)?
        } else {
            s.parse().with_context(|| format!("recipient {origin}"))?
        };
        if !out.contains(&r) {
            out.push(r);
        }
        Ok(())
    };
    for (i, s) in strings.iter().enumerate() {
        push(s, &format!("#{}", i + 1))?;
    }
    for f in files {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read {}", f.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            push(line, &format!("on line {} of {}", n + 1, f.display()))?;
        }
    }
    if out.is_empty() {
        bail!("no recipients given; use -r RECIPIENT or -R FILE");
    }
    Ok(out)
}

fn file_metadata(
    input: Option<&Path>,
    len: Option<u64>,
    label: Option<String>,
) -> Result<Metadata> {
    let mut meta = Metadata {
        size: len,
        label,
        ..Default::default()
    };
    if let Some(p) = input.filter(|p| p.as_os_str() != "-") {
        meta.name = p.file_name().and_then(|n| n.to_str()).map(str::to_owned);
        let m = std::fs::metadata(p)?;
        if let Ok(t) = m.modified() {
            meta.mtime = t
                .duration_since(std::time::UNIX_EPOCH)
                .ok()
                .map(|d| (d.as_secs() as i64, d.subsec_nanos()));
        }
    }
    Ok(meta)
}

fn restrict_permissions(out: &Output) -> Result<()> {
    #[cfg(unix)]
    if let Output::File { tmp, .. } = out {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.get_ref().path(), std::fs::Permissions::from_mode(0o600))?;
    }
    let _ = out;
    Ok(())
}

/// How a header change reached the disk.
enum Written {
    /// The edit changed nothing; the file was not touched.
    Unchanged,
    /// The new header has the old one's length and was written over it.
    InPlace { len: usize },
    /// The header did not fit: the file was rewritten whole.
    Whole { from: usize, to: usize },
}

impl Written {
    /// How the change was made, for the end of a sentence.
    fn describe(&self) -> String {
        match self {
            Written::Unchanged => "nothing to change".to_owned(),
            Written::InPlace { len } => {
                format!("in place (same {len}-byte header, content untouched)")
            }
            Written::Whole { from, to } if to > from => format!(
                "the header grew from {from} to {to} bytes (its padding had no room), so the \
                 file was rewritten whole; content unchanged"
            ),
            Written::Whole { from, to } => format!(
                "the header shrank from {from} to {to} bytes, so the file was rewritten whole; \
                 content unchanged"
            ),
        }
    }
}

/// Change a file's header (FORMAT.md §6). The changed header is refitted to
/// the old one's length ([`Header::refit`], §4.7): when it fits, it is
/// written over the old header in place through the sync agent's journaled
/// rewrite (`kluis_sync::inplace`, crash-safe), so the file keeps its inode
/// and the payload is neither read nor written. Otherwise the header was
/// padded afresh and the whole file is written beside it and renamed over
/// it when complete.
fn edit_header<T>(
    file: &Path,
    id: &Identity,
    edit: impl FnOnce(&mut Header, &kluis_format::FileKey) -> kluis_format::Result<T>,
) -> Result<(T, Written)> {
    use kluis_sync::inplace::{self, InPlaceError};

    // `kluis_sync::inplace` works in the file's parent directory, which a
    // bare relative name ("doc.kluis") gives as "": hand it an absolute path.
    let absolute =
        std::path::absolute(file).with_context(|| format!("cannot resolve {}", file.display()))?;
    // A rewrite that a crash interrupted is finished first.
    inplace::recover_beside(&absolute);
    let mut input = io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?,
    );
    let in_file = || format!("{}", file.display());
    let mut header = Header::read(&mut input).with_context(in_file)?;
    // Parsing is canonical: these are the bytes on disk.
    let old = header.to_bytes();
    let file_key = header.unwrap_file_key(id).with_context(in_file)?;
    let result = edit(&mut header, &file_key).with_context(in_file)?;
    if header.to_bytes() == old {
        return Ok((result, Written::Unchanged));
    }
    match header.refit(&file_key, old.len()).with_context(in_file)? {
        Refit::SameLength => {
            drop(input);
            inplace::rewrite_header(&absolute, &old, &header.to_bytes()).map_err(|e| match e {
                InPlaceError::Changed => anyhow::anyhow!(
                    "{} changed while its header was rewritten; it was left as it was (run the command again)",
                    file.display()
                ),
                InPlaceError::Io(e) => anyhow::Error::new(e)
                    .context(format!("cannot rewrite the header of {}", file.display())),
            })?;
            Ok((result, Written::InPlace { len: old.len() }))
        }
        Refit::Repadded { from, to } => {
            let mut out = Output::open(Some(file))?;
            out.copy_permissions_from(file)?;
            header.write(&mut out).with_context(in_file)?;
            io::copy(&mut input, &mut out)
                .with_context(|| format!("cannot copy {}", file.display()))?;
            out.commit()?;
            Ok((result, Written::Whole { from, to }))
        }
    }
}

fn recipients_cmd(
    action: RecipientsAction,
    pass: &Passphrases,
    rng: &mut impl rand_core::CryptoRng,
) -> Result<()> {
    match action {
        RecipientsAction::Add {
            identity,
            recipients,
            classical,
            file,
        } => {
            let id = load_identity(&identity, pass)?;
            let to = parse_recipients(&recipients, &[])?;
            let ((added, used), written) = edit_header(&file, &id, |h, k| {
                // The file's own KEM unless told otherwise (FORMAT.md §4.7):
                // a classical file stays classical.
                let used = if classical {
                    KemChoice::X25519
                } else {
                    h.reshare_kem()
                };
                let mut n = 0;
                for r in &to {
                    n += usize::from(h.add_recipient(k, r, used, rng)?);
                }
                Ok((n, used))
            })?;
            if added == 0 {
                eprintln!(
                    "Every given recipient already had access to {}; nothing changed.",
                    file.display()
                );
                return Ok(());
            }
            let kem = match used {
                KemChoice::XWing => "X-Wing",
                KemChoice::X25519 => "X25519",
            };
            eprintln!(
                "Added {added} recipient(s) ({kem}) to {}: {}.",
                file.display(),
                written.describe()
            );
            Ok(())
        }
        RecipientsAction::Remove {
            identity,
            recipients,
            file,
        } => {
            let id = load_identity(&identity, pass)?;
            let mut ids = Vec::new();
            for s in &recipients {
                ids.push(match s.parse::<Recipient>() {
                    Ok(r) => r.fingerprint().key_id(),
                    Err(_) => parse_key_id(s)?,
                });
            }
            let (removed, written) = edit_header(&file, &id, |h, k| {
                let mut n = 0;
                for kid in &ids {
                    n += h.remove_recipient(k, kid)?;
                }
                Ok(n)
            })?;
            if removed == 0 {
                bail!(
                    "none of the given recipients had access to {}",
                    file.display()
                );
            }
            eprintln!(
                "Removed {removed} stanza(s) from {}: {}.",
                file.display(),
                written.describe()
            );
            eprintln!(
                "Note: copies of the file made before this change can still be opened by them."
            );
            Ok(())
        }
        RecipientsAction::List { identity, file } => {
            let bytes = io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?,
            );
            let header = Header::read(bytes).with_context(|| format!("{}", file.display()))?;
            let mut me = None;
            if identity.identity.is_some() {
                let id = load_identity(&identity, pass)?;
                header
                    .unwrap_file_key(&id)
                    .with_context(|| format!("{}", file.display()))?;
                me = Some(id.recipient().fingerprint().key_id());
            } else {
                eprintln!("(not authenticated: pass -i IDENTITY to verify the header)");
            }
            let stdout = io::stdout();
            let mut w = stdout.lock();
            for s in header.stanzas() {
                let you = if Some(s.key_id) == me { "  (you)" } else { "" };
                writeln!(w, "{}  {}{you}", s.key_id, s.kem_name())?;
            }
            Ok(())
        }
    }
}

/// A key id (32 hex digits) or a whole fingerprint (64, whose first half is
/// the key id, FORMAT.md §2), spaces allowed.
fn parse_key_id(s: &str) -> Result<kluis_format::KeyId> {
    let hex: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !matches!(hex.len(), 32 | 64) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        bail!(
            "{s:?} is neither a recipient string, a key id (32 hex digits) nor a fingerprint (64 hex digits)"
        );
    }
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(kluis_format::KeyId(id))
}

fn inspect(file: &Path) -> Result<()> {
    let total = std::fs::metadata(file)
        .with_context(|| format!("cannot open {}", file.display()))?
        .len();
    let reader = io::BufReader::new(std::fs::File::open(file)?);
    let header = Header::read(reader).with_context(|| format!("{}", file.display()))?;
    let header_len = header.to_bytes().len() as u64;
    let payload = total.saturating_sub(header_len);
    println!("Kluis file format version 1, suite 1 (HPKE + Cobblestone-256 AES-256-GCM)");
    println!(
        "File id:          {}",
        header
            .file_id()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    println!(
        "Header:           {header_len} bytes, encrypted metadata block {} bytes, padding {} bytes (room to add recipients in place)",
        header.metadata_len(),
        header.padding_len()
    );
    println!("Recipients:       {}", header.stanzas().len());
    for s in header.stanzas() {
        println!("  {}  {}", s.key_id, s.kem_name());
    }
    use kluis_format::PayloadLayout;
    // The shortest payload: prefix and one empty (final) chunk.
    let empty = PayloadLayout::for_plaintext(0)?.payload_len();
    if payload < empty {
        println!("Payload:          {payload} bytes (truncated: too short to hold any chunk)");
        return Ok(());
    }
    match PayloadLayout::for_payload(payload) {
        Ok(layout) => println!(
            "Payload:          {payload} bytes in {} chunk(s); plaintext {} bytes (not verified without a key)",
            layout.chunks(),
            layout.plaintext_len()
        ),
        Err(_) => {
            println!("Payload:          {payload} bytes (invalid length: truncated or extended)")
        }
    }
    println!("File name, time and label are encrypted.");
    Ok(())
}
