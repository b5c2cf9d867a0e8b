//! Token verification, application-token signing and key formats.
//!
//! Every call from SuperOffice carries a JWT signed with SuperOffice's "Federated Login"
//! certificate; [`TokenVerifier`] checks it and yields the tenant's [`Claims`]. Authenticate is
//! answered with a token signed by our [`ApplicationKey`]; [`ApplicationPublicKey`] checks such
//! answers as SuperOffice does. [`TokenIssuer`] plays SuperOffice's part for the simulator and
//! the tests.

mod answer;
mod certificate;
mod claims;
mod error;
mod issuer;
mod key;
mod rsa_xml;
mod token;

pub use answer::ANSWER_WINDOW;
pub use certificate::Certificate;
pub use claims::{
    CONTEXT_ID_CLAIM, Claims, ISSUER, MAX_CONTEXT_ID_LEN, MAX_NONCE_LEN, is_valid_context_id,
    is_valid_nonce,
};
pub use error::AuthError;
pub use issuer::{
    ISSUER_KEY_BITS, IssuedToken, TOKEN_VALID_AFTER, TOKEN_VALID_BEFORE, TokenIssuer,
};
pub use key::{ApplicationKey, ApplicationPublicKey, MAX_KEY_BITS, MIN_KEY_BITS};
pub use token::{MAX_LEEWAY, MAX_TOKEN_BYTES, TokenVerifier};

pub use crate::config::AuthEnvironment;
