//! `kluis`: the command-line face of Kluis. It parses arguments, calls the
//! libraries and prints; all behaviour lives in the library crates.
#![forbid(unsafe_code)]

mod account_cmds;
mod admin_cmds;
mod crypt;
mod home;
mod output;
#[cfg(unix)]
mod parallel;
mod quickstart;
mod secret;
mod share_cmds;
mod start;
mod sync_cmds;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Kluis: client-side, zero-knowledge encryption for files in synced folders.
#[derive(Debug, Parser)]
#[command(
    name = "kluis",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
struct Cli {
    /// Read passphrases from this file (first line) instead of prompting.
    /// KLUIS_PASSPHRASE may hold the passphrase itself, for scripts.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "KLUIS_PASSPHRASE_FILE"
    )]
    passphrase_file: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Kluis with embedded defaults: a local broker, your identity, and
    /// the sync agent on a plaintext folder and its encrypted mirror.
    Start(start::StartArgs),
    /// First steps: create your identity if needed, then encrypt and decrypt
    /// a sample file.
    Quickstart(quickstart::QuickstartArgs),
    /// Your account on the organisation's broker (key escrow, directory).
    #[command(subcommand)]
    Account(account_cmds::AccountCommand),
    /// Colleagues in the organisation's directory.
    #[command(subcommand)]
    Contacts(account_cmds::ContactsCommand),
    /// Recovery administrators: approval keys, recovery setup, approvals.
    Admin(admin_cmds::AdminArgs),
    #[command(flatten)]
    Crypt(crypt::CryptCommand),
    #[command(flatten)]
    Sync(sync_cmds::SyncCommand),
    #[command(flatten)]
    Share(share_cmds::ShareCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = secret::Passphrases::new(cli.passphrase_file.clone());
    let result = match cli.command {
        Command::Start(a) => start::run(a, &ctx),
        Command::Quickstart(a) => quickstart::run(a, &ctx),
        Command::Account(c) => account_cmds::run_account(c, &ctx),
        Command::Contacts(c) => account_cmds::run_contacts(c),
        Command::Admin(a) => admin_cmds::run(a),
        Command::Crypt(c) => crypt::run(c, &ctx),
        Command::Sync(c) => sync_cmds::run(c, &ctx),
        Command::Share(c) => share_cmds::run(c, &ctx),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kluis: {}", output::describe(&e));
            ExitCode::FAILURE
        }
    }
}
