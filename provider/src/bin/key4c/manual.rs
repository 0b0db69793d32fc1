//! `key4c completions` and `key4c manpages`: shell completions and man pages made from the
//! command definitions themselves, so they never drift from `--help`. The Debian package
//! (`scripts/package`) installs both.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::error::{CliError, Result};

/// Options of `completions`.
#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    shell: Shell,
}

/// Options of `manpages`.
#[derive(Args)]
pub struct ManpagesArgs {
    /// Directory to write `key4c.1` and one page per command (`key4c-pin-change-so.1`, ...).
    #[arg(value_name = "DIR")]
    out: PathBuf,
}

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> Result<()> {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "key4c", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout(), &script) {
        // Read by `head` or the like: what it did not read is not wanted.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(CliError::new(format!("cannot write the completions: {e}")))
        }
        _ => Ok(()),
    }
}

/// Writes the man pages of `key4c` and of every command under it.
pub fn manpages(args: ManpagesArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::io("create the directory", &args.out, e))?;
    let mut n = 0;
    write_pages(&crate::Cli::command(), "key4c", "key4c", &args.out, &mut n)?;
    println!("{n} man pages written to {}", args.out.display());
    Ok(())
}

fn write_pages(
    command: &clap::Command,
    name: &str,
    invoked: &str,
    out: &Path,
    n: &mut usize,
) -> Result<()> {
    // The page's name is the command's whole path ("key4c-pin-change-so"), as git's are; its
    // synopsis shows how it is typed ("key4c pin change-so").
    let command = command
        .clone()
        .name(name.to_string())
        .bin_name(invoked.to_string());
    let path = out.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .render(&mut page)
        .map_err(|e| CliError::io("render", &path, e))?;
    std::fs::write(&path, page).map_err(|e| CliError::io("write", &path, e))?;
    *n += 1;
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        let sub_name = sub.get_name();
        write_pages(
            sub,
            &format!("{name}-{sub_name}"),
            &format!("{invoked} {sub_name}"),
            out,
            n,
        )?;
    }
    Ok(())
}
