//! The syntax tree of a build file. Every value that a later stage may need to
//! point at in a diagnostic is [`Spanned`].

use super::test_block::TestDecl;
use miette::SourceSpan;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: SourceSpan,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: SourceSpan) -> Self {
        Spanned { value, span }
    }
}

pub use pinfold_image::platform::{Platform, KNOWN_ARCHITECTURES, KNOWN_OS};

/// The whole build file.
#[derive(Debug, Clone)]
pub struct BuildFile {
    /// The language version of the `pinfold` header node.
    pub version: Option<Spanned<u64>>,
    pub epoch: Option<Spanned<u64>>,
    pub platforms: Option<Spanned<Vec<Spanned<Platform>>>>,
    pub compression: Option<Spanned<String>>,
    pub bases: Vec<BaseDecl>,
    pub downloads: Vec<DownloadDecl>,
    pub archives: Vec<ArchiveDecl>,
    /// `debian NAME { … }`: Debian package sets (`spec/packages.md`).
    pub debian: Vec<DebianDecl>,
    /// `python NAME { … }`: Python package sets (`spec/packages.md`).
    pub python: Vec<PythonDecl>,
    pub images: Vec<ImageDecl>,
    /// `step NAME { … }`: commands run in a sandbox (see `spec/steps.md`).
    pub steps: Vec<StepDecl>,
}

/// A make-style step: a command run hermetically in an image, with declared inputs
/// and outputs.
#[derive(Debug, Clone)]
pub struct StepDecl {
    pub name: Spanned<String>,
    /// A `base` or an `image` of the build file.
    pub image: Option<Spanned<String>>,
    pub inputs: Vec<StepInput>,
    /// Commands run one after the other in the same sandbox and work directory.
    pub run: Vec<Spanned<Vec<String>>>,
    /// Paths relative to the work directory.
    pub outputs: Vec<Spanned<String>>,
    pub env: Vec<(Spanned<String>, Spanned<String>)>,
    pub workdir: Option<Spanned<String>>,
    /// The one platform the step is for; without it, the step runs once for each
    /// platform that needs it.
    pub platform: Option<Spanned<Platform>>,
    /// The platform whose image runs the command (BuildKit's `BUILDPLATFORM`), when it
    /// is not the target's: a cross-compiling step runs natively for every target.
    pub build_platform: Option<Spanned<Platform>>,
    pub span: SourceSpan,
}

/// One `inputs` node of a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepInput {
    /// Files of the repository: a path (a file, or a directory and all below it) or a
    /// glob (`*`, `?`, `**`), relative to the build file.
    Files(Spanned<String>),
    /// Outputs of another step: all of them, or the paths given.
    Step { step: Spanned<String>, paths: Vec<Spanned<String>> },
    /// A declared `download`'s file, at `to` below the work directory (default: the
    /// URL's last segment).
    Download { name: Spanned<String>, to: Option<Spanned<String>> },
    /// A declared `archive`'s content, below `to` in the work directory (default: the
    /// archive's name).
    Archive { name: Spanned<String>, to: Option<Spanned<String>> },
    /// The locked files (`.deb`s, wheels) of a package set for the run's platform,
    /// below `to` in the work directory (default: the set's name).
    Packages { name: Spanned<String>, to: Option<Spanned<String>> },
}

/// A file fetched by URL, pinned by sha256, optionally one per platform.
#[derive(Debug, Clone)]
pub struct DownloadDecl {
    pub name: Spanned<String>,
    pub sources: Vec<DownloadSource>,
    pub span: SourceSpan,
}

#[derive(Debug, Clone)]
pub struct DownloadSource {
    /// `None`: the same file for every platform.
    pub platform: Option<Spanned<Platform>>,
    pub url: Spanned<String>,
    pub sha256: Option<Spanned<String>>,
    pub span: SourceSpan,
}

/// A tarball (local, or fetched by URL) whose content a layer can hold.
#[derive(Debug, Clone)]
pub struct ArchiveDecl {
    pub name: Spanned<String>,
    pub path: Option<Spanned<String>>,
    pub url: Option<Spanned<String>>,
    pub sha256: Option<Spanned<String>>,
    pub span: SourceSpan,
}

/// A Debian (or any apt repository's) package set: what to install, resolved by
/// `pinfold lock` per platform to exact `.deb` files.
#[derive(Debug, Clone)]
pub struct DebianDecl {
    pub name: Spanned<String>,
    /// Several suites: the highest version of a package among them wins.
    pub suites: Vec<Spanned<String>>,
    pub components: Vec<Spanned<String>>,
    pub packages: Vec<Spanned<String>>,
    /// `platform "linux/arm64" { packages … }`: added for that platform only.
    pub platform_packages: Vec<(Spanned<Platform>, Vec<Spanned<String>>)>,
    /// Mirrors of the build file, tried first; else `--mirror`, else the machine's apt sources.
    pub mirrors: Vec<Spanned<String>>,
    /// A keyring below the build file, pinned by sha256; else the host's archive keyring.
    pub keyring: Option<Spanned<String>>,
    pub keyring_sha256: Option<Spanned<String>>,
    /// Also install the suite's `Essential: yes` packages.
    pub essential: bool,
    pub span: SourceSpan,
}

/// A Python package set: requirements resolved by `pinfold lock` per platform to
/// exact wheels for the target interpreter.
#[derive(Debug, Clone)]
pub struct PythonDecl {
    pub name: Spanned<String>,
    /// `requirements.txt` files below the build file.
    pub requirements: Vec<Spanned<String>>,
    /// Inline requirement specifiers (`numpy==2.1.*`).
    pub packages: Vec<Spanned<String>>,
    /// A PEP 751 lock taken as it is.
    pub pylock: Option<Spanned<String>>,
    /// The target interpreter's version (`3.11`).
    pub python: Option<Spanned<String>>,
    /// The index; else `PIP_INDEX_URL`, `UV_INDEX_URL` or pip's configuration.
    pub index: Option<Spanned<String>>,
    pub span: SourceSpan,
}

/// Where a base image's bytes are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// An OCI image layout directory.
    Layout(Spanned<String>),
    /// A tar of an OCI image layout.
    OciArchive(Spanned<String>),
    /// A tar that `docker load` accepts.
    DockerArchive(Spanned<String>),
    /// A registry reference (`HOST/REPO[:TAG][@DIGEST]`).
    Registry(Spanned<String>),
}

#[derive(Debug, Clone)]
pub struct BaseDecl {
    pub name: Spanned<String>,
    pub source: Option<BaseSource>,
    /// `ref`: the `org.opencontainers.image.ref.name` inside a layout.
    pub reference: Option<Spanned<String>>,
    pub digest: Option<Spanned<String>>,
    pub span: SourceSpan,
}

/// `from scratch` or `from BASE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromDecl {
    Scratch,
    Base(String),
}

#[derive(Debug, Clone)]
pub struct ImageDecl {
    pub name: Spanned<String>,
    pub from: Option<Spanned<FromDecl>>,
    pub platforms: Option<Spanned<Vec<Spanned<Platform>>>>,
    pub compression: Option<Spanned<String>>,
    pub layers: Vec<LayerDecl>,
    pub config: ConfigDecl,
    pub overrides: Vec<PlatformOverride>,
    /// `test NAME { … }` blocks: what `pinfold test` checks (see `spec/tests.md`).
    pub tests: Vec<TestDecl>,
    pub span: SourceSpan,
}

/// A `platform "os/arch" { … }` block inside an image: its config nodes replace or
/// extend the image's for that platform, and its layers add content for it.
#[derive(Debug, Clone)]
pub struct PlatformOverride {
    pub platform: Spanned<Platform>,
    pub layers: Vec<LayerDecl>,
    pub config: ConfigDecl,
    pub span: SourceSpan,
}

#[derive(Debug, Clone)]
pub struct LayerDecl {
    pub name: Spanned<String>,
    pub entries: Vec<EntryDecl>,
    pub span: SourceSpan,
}

/// Owner and mode given on an entry; what is absent takes the defaults of the spec.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub mode: Option<Spanned<u32>>,
    pub uid: Option<Spanned<u64>>,
    pub gid: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryDecl {
    Copy {
        /// `step=NAME`: the source is an output of that step, not a repository file.
        step: Option<Spanned<String>>,
        source: Spanned<String>,
        to: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    File {
        path: Spanned<String>,
        content: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    Dir {
        path: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    Symlink {
        path: Spanned<String>,
        target: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    /// `download NAME to=… mode=…`: the downloaded file for the platform built.
    Download {
        name: Spanned<String>,
        to: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    /// `extract NAME to="/"`: an archive's content below `to`.
    Extract {
        name: Spanned<String>,
        to: Spanned<String>,
        attrs: Attributes,
        span: SourceSpan,
    },
    /// `install NAME [to="/opt/venv"]`: a package set's files, as locked for the
    /// platform built (for a python set, `to` is a virtual environment).
    Install {
        name: Spanned<String>,
        to: Option<Spanned<String>>,
        span: SourceSpan,
    },
}

impl EntryDecl {
    pub fn span(&self) -> SourceSpan {
        match self {
            EntryDecl::Copy { span, .. }
            | EntryDecl::File { span, .. }
            | EntryDecl::Dir { span, .. }
            | EntryDecl::Symlink { span, .. }
            | EntryDecl::Download { span, .. }
            | EntryDecl::Extract { span, .. }
            | EntryDecl::Install { span, .. } => *span,
        }
    }
}

/// The image configuration nodes of an image or of a platform override.
#[derive(Debug, Clone, Default)]
pub struct ConfigDecl {
    /// In the order written; a later value of the same key replaces the earlier one
    /// in its place.
    pub env: Vec<(Spanned<String>, Spanned<String>)>,
    pub entrypoint: Option<Spanned<Vec<String>>>,
    pub cmd: Option<Spanned<Vec<String>>>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub labels: Vec<(Spanned<String>, Spanned<String>)>,
    pub annotations: Vec<(Spanned<String>, Spanned<String>)>,
    /// `PORT/PROTO` with the protocol made explicit (`8080` → `8080/tcp`).
    pub expose: Vec<Spanned<String>>,
    pub volumes: Vec<Spanned<String>>,
    pub stop_signal: Option<Spanned<String>>,
}
