//! OCI objects: references of the command-line contract ([`reference`]), reading
//! images from layouts and archives with every blob verified ([`archive`], [`read`]),
//! canonical JSON for every hashed blob ([`json`]), assembling configs, manifests and
//! indexes ([`assemble`]), and writing the outputs atomically ([`output`]).

pub mod archive;
pub mod assemble;
pub mod json;
pub mod output;
pub mod read;
pub mod reference;

/// Media types pinfold reads and writes.
pub mod media {
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

    pub fn is_index(media_type: &str) -> bool {
        media_type == INDEX || media_type == DOCKER_MANIFEST_LIST
    }

    pub fn is_manifest(media_type: &str) -> bool {
        media_type == MANIFEST || media_type == DOCKER_MANIFEST
    }
}

/// The annotation that names an image inside a layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";
