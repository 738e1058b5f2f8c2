//! What a vertex produces.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use kiln_graph::Digest;
use sha2::{Digest as _, Sha256};

/// The result of a vertex.
#[derive(Clone)]
pub enum Output {
    /// A filesystem made of layers (bottom first), each a committed layer in the store
    /// or a blob the backend can fetch. `digest` identifies the content
    /// ([`chain_digest`] of the layer ids).
    Layers { layers: Vec<Digest>, digest: Digest },
    /// A directory on the client, read in place. `digest` identifies what the build
    /// can see of it; `handle` is the backend's own description of it.
    Local {
        name: String,
        digest: Digest,
        handle: Arc<dyn Any + Send + Sync>,
    },
}

impl Output {
    /// A filesystem of these layers.
    pub fn layers(layers: Vec<Digest>) -> Output {
        let digest = chain_digest(&layers);
        Output::Layers { layers, digest }
    }

    /// The content digest that keys what depends on this output.
    pub fn digest(&self) -> &Digest {
        match self {
            Output::Layers { digest, .. } | Output::Local { digest, .. } => digest,
        }
    }

    /// The layers, when the output is a layer stack.
    pub fn layer_ids(&self) -> Option<&[Digest]> {
        match self {
            Output::Layers { layers, .. } => Some(layers),
            Output::Local { .. } => None,
        }
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Layers { layers, digest } => f
                .debug_struct("Layers")
                .field("layers", layers)
                .field("digest", digest)
                .finish(),
            Output::Local { name, digest, .. } => f
                .debug_struct("Local")
                .field("name", name)
                .field("digest", digest)
                .finish(),
        }
    }
}

/// The identity of a layer stack, like an OCI ChainID: the id of a single layer is
/// its own; each further layer hashes the chain below it with its id. The empty stack
/// has the digest of the empty string.
pub fn chain_digest(layers: &[Digest]) -> Digest {
    let Some((first, rest)) = layers.split_first() else {
        return Digest::of(b"");
    };
    let mut chain = first.clone();
    for l in rest {
        let mut h = Sha256::new();
        h.update(chain.to_string().as_bytes());
        h.update(b" ");
        h.update(l.to_string().as_bytes());
        chain = Digest::from_sha256(h.finalize().into());
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_digest_depends_on_order_and_content() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        assert_eq!(chain_digest(std::slice::from_ref(&a)), a);
        assert_ne!(
            chain_digest(&[a.clone(), b.clone()]),
            chain_digest(&[b.clone(), a.clone()])
        );
        assert_eq!(chain_digest(&[]), Digest::of(b""));
    }
}
