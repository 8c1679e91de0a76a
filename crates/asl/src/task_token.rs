//! Task tokens: which attempt of which execution a `SendTask*` call answers, sealed so that
//! only a token the engine handed out is accepted.
//!
//! A token is `PAYLOAD.SEAL`, both base64url without padding: PAYLOAD is
//! `{task id}#{execution ARN}` (the task id is the attempt's `…Scheduled` event id), SEAL the
//! HMAC-SHA256 of PAYLOAD under a secret [`TokenKey`] the store keeps. Without the key no one
//! can make the token of another task. Builds before the seal issued PAYLOAD alone
//! ([`Checked::Unsealed`]); the engine accepts such a token only where it is the very token
//! stored for a task still in flight.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The secret task tokens are sealed with (32 random bytes, created once per store).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    pub fn new(bytes: [u8; 32]) -> TokenKey {
        TokenKey(bytes)
    }

    fn mac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(payload);
        mac
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

/// The attempt a token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskTokenRef {
    pub execution_arn: String,
    pub task_id: u64,
}

/// What [`check`] found in a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Sealed with the key: the engine issued it.
    Genuine(TaskTokenRef),
    /// An older build's token, without a seal: genuine only if it is the token stored for
    /// that task.
    Unsealed(TaskTokenRef),
}

/// The token of attempt `task_id` of `execution_arn`.
pub fn task_token(key: &TokenKey, execution_arn: &str, task_id: u64) -> String {
    let payload = format!("{task_id}#{execution_arn}");
    let seal = key.mac(payload.as_bytes()).finalize().into_bytes();
    format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode(seal)
    )
}

/// The attempt a token names, without checking its seal: what it claims (the account a
/// request names, say). `None` when it is no token at all.
pub fn parse_task_token(token: &str) -> Option<TaskTokenRef> {
    let payload = token.split_once('.').map_or(token, |(payload, _)| payload);
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let (id, arn) = text.split_once('#')?;
    Some(TaskTokenRef {
        execution_arn: arn.to_owned(),
        task_id: id.parse().ok()?,
    })
}

/// Checks a token's seal against `key`. `None`: not a token, or a seal that is not the key's
/// (forged or altered).
pub fn check(key: &TokenKey, token: &str) -> Option<Checked> {
    let named = parse_task_token(token)?;
    let Some((payload, seal)) = token.split_once('.') else {
        return Some(Checked::Unsealed(named));
    };
    let seal = URL_SAFE_NO_PAD.decode(seal).ok()?;
    let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
    key.mac(&payload)
        .verify_slice(&seal)
        .ok()
        .map(|()| Checked::Genuine(named))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:states:us-east-1:123456789012:execution:sm:run";

    #[test]
    fn sealed_tokens_check_only_under_their_key() {
        let key = TokenKey::new([7; 32]);
        let token = task_token(&key, ARN, 12);
        let named = TaskTokenRef {
            execution_arn: ARN.into(),
            task_id: 12,
        };
        assert_eq!(check(&key, &token), Some(Checked::Genuine(named.clone())));
        assert_eq!(parse_task_token(&token), Some(named));
        assert_eq!(check(&TokenKey::new([8; 32]), &token), None);
        // Another task's payload under this token's seal.
        let (_, seal) = token.split_once('.').expect("sealed");
        let other = URL_SAFE_NO_PAD.encode(format!("13#{ARN}"));
        assert_eq!(check(&key, &format!("{other}.{seal}")), None);
        // A seal cut short or changed.
        assert_eq!(check(&key, &token[..token.len() - 2]), None);
        assert_eq!(check(&key, &format!("{token}A")), None);
    }

    #[test]
    fn unsealed_tokens_are_told_apart() {
        let key = TokenKey::new([7; 32]);
        let old = URL_SAFE_NO_PAD.encode(format!("3#{ARN}"));
        let named = TaskTokenRef {
            execution_arn: ARN.into(),
            task_id: 3,
        };
        assert_eq!(check(&key, &old), Some(Checked::Unsealed(named)));
        for junk in ["", ".", "%%", "abc.def", &URL_SAFE_NO_PAD.encode("x#y")] {
            assert_eq!(check(&key, junk), None, "{junk:?}");
        }
    }
}
