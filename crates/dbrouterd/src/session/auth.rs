//! Verifying a client against the configured users, with the plugin it chose:
//! - `mysql_native_password`: checked against the password or its `*HEX` hash;
//! - `caching_sha2_password` (MySQL 8 clients' default): the fast path is checked when the
//!   cleartext password is configured, answered with `fast_auth_success`. For users with only a
//!   hash the fast path cannot be checked, so dbrouterd asks for full authentication
//!   (`perform_full_authentication`) and checks the cleartext against the hash: sent as it is
//!   inside TLS, or without TLS encrypted with dbrouterd's RSA public key, which the client
//!   asks for (`0x02`) or already has ([`crate::client_key`]).
//! - any other plugin: the client is switched to `mysql_native_password` (AuthSwitchRequest).
//!
//! A user with `require_tls` is refused without TLS whatever its password, as MySQL refuses a
//! `REQUIRE SSL` account.
//!
//! A failed login gets ERR 1045 worded as the server words it; the secrets and the client's
//! response never reach a log.

use std::sync::Arc;

use tracing::warn;

use crate::client_key::ClientKey;
use crate::protocol::auth::{
    scramble_native, verify_caching_sha2, Scramble, CACHING_SHA2_PASSWORD, NATIVE_PASSWORD,
};
use crate::protocol::caching_sha2::{
    parse_cleartext, ServerKey, AUTH_MORE_DATA, FAST_AUTH_SUCCESS, PERFORM_FULL_AUTH,
    REQUEST_PUBLIC_KEY,
};
use crate::protocol::{ErrPacket, HandshakeResponse41};
use crate::users::{UserEntry, Users};

use super::client::{ClientConn, ClientError};

/// Authenticates the client that sent `response`. `Ok(None)`: refused (the ERR was sent).
pub async fn authenticate(
    client: &mut ClientConn,
    users: &Users,
    client_key: &ClientKey,
    response: &HandshakeResponse41,
    scramble: &Scramble,
) -> Result<Option<Arc<UserEntry>>, ClientError> {
    let using_password = !response.auth_response.is_empty();
    let Some(user) = users.get(&response.username) else {
        deny(client, &response.username, using_password).await?;
        return Ok(None);
    };
    let ok = check(
        client,
        &user,
        client_key,
        response.auth_plugin_name.as_deref(),
        &response.auth_response,
        scramble,
    )
    .await?;
    if !ok {
        deny(client, &response.username, using_password).await?;
        return Ok(None);
    }
    Ok(Some(user))
}

/// Checks `user`'s answer to `scramble` made with `plugin` (asking for the cleartext inside TLS
/// or RSA-encrypted, or switching the client to mysql_native_password, when needed). Also
/// used by COM_CHANGE_USER.
pub async fn check(
    client: &mut ClientConn,
    user: &UserEntry,
    client_key: &ClientKey,
    plugin: Option<&str>,
    auth_response: &[u8],
    scramble: &Scramble,
) -> Result<bool, ClientError> {
    if user.require_tls && !client.is_tls() {
        // Refused before any exchange, so a right and a wrong password look the same.
        warn!(user = %user.name, "login refused: the user requires TLS and the client did not switch to it");
        return Ok(false);
    }
    let plugin = plugin.unwrap_or(NATIVE_PASSWORD);
    let cleartext = user.credential.cleartext();
    // The fast path needs the cleartext here; full authentication needs TLS or our RSA key.
    let rsa = match plugin {
        CACHING_SHA2_PASSWORD if cleartext.is_none() && !client.is_tls() => client_key.get().await,
        _ => None,
    };
    let sha2_possible = cleartext.is_some() || client.is_tls() || rsa.is_some();
    let ok = match plugin {
        NATIVE_PASSWORD => user.verify_native(scramble.as_bytes(), auth_response),
        CACHING_SHA2_PASSWORD if sha2_possible => {
            let mut response = auth_response.to_vec();
            if response.is_empty() && cleartext != Some(&b""[..]) {
                // A client whose own default plugin is not the greeting's sends no data and
                // waits to be asked again with a scramble for its plugin, as MySQL does.
                client
                    .send(&auth_switch(CACHING_SHA2_PASSWORD, scramble))
                    .await?;
                response = client.read_packet().await?.payload.to_vec();
            }
            check_caching_sha2(client, user, rsa.as_deref(), &response, scramble).await?
        }
        _ => {
            client.send(&auth_switch(NATIVE_PASSWORD, scramble)).await?;
            let answer = client.read_packet().await?;
            user.verify_native(scramble.as_bytes(), &answer.payload)
        }
    };
    Ok(ok)
}

/// A `caching_sha2_password` response: the fast path against the cleartext password, or, for
/// a user with only a hash, full authentication (the caller made sure the client is on TLS or
/// passed the RSA key).
async fn check_caching_sha2(
    client: &mut ClientConn,
    user: &UserEntry,
    rsa: Option<&ServerKey>,
    response: &[u8],
    scramble: &Scramble,
) -> Result<bool, ClientError> {
    if let Some(password) = user.credential.cleartext() {
        let ok = verify_caching_sha2(scramble.as_bytes(), password, response);
        if ok {
            // AuthMoreData: fast_auth_success; the OK follows.
            client.send(&[AUTH_MORE_DATA, FAST_AUTH_SUCCESS]).await?;
        }
        return Ok(ok);
    }
    // Only the hash is known: the fast path cannot be checked, the cleartext can.
    client.send(&[AUTH_MORE_DATA, PERFORM_FULL_AUTH]).await?;
    let mut answer = client.read_packet().await?.payload.to_vec();
    // The caller passed a key only for a client without TLS.
    let Some(key) = rsa else {
        return Ok(verify_cleartext(user, scramble, parse_cleartext(&answer)));
    };
    if answer == [REQUEST_PUBLIC_KEY] {
        let mut more = Vec::with_capacity(key.public_pem().len() + 1);
        more.push(AUTH_MORE_DATA);
        more.extend_from_slice(key.public_pem().as_bytes());
        client.send(&more).await?;
        answer = client.read_packet().await?.payload.to_vec();
    }
    // A client that had the key already (`--server-public-key-path`) sends the password
    // encrypted straight away; anything that does not decrypt fails the login.
    Ok(match key.decrypt_password(&answer, scramble.as_bytes()) {
        Some(password) => verify_cleartext(user, scramble, &password),
        None => false,
    })
}

/// AuthSwitchRequest: the plugin's name and our scramble, each NUL-terminated.
fn auth_switch(plugin: &str, scramble: &Scramble) -> Vec<u8> {
    let mut switch = Vec::with_capacity(48);
    switch.push(0xFE);
    switch.extend_from_slice(plugin.as_bytes());
    switch.push(0);
    switch.extend_from_slice(scramble.as_bytes());
    switch.push(0);
    switch
}

/// Checks a cleartext password against the user's credential (hash-only users learn their
/// backend secret from it, as from a native login).
fn verify_cleartext(user: &UserEntry, scramble: &Scramble, password: &[u8]) -> bool {
    let response = scramble_native(scramble.as_bytes(), password)
        .map(|r| r.to_vec())
        .unwrap_or_default();
    user.verify_native(scramble.as_bytes(), &response)
}

async fn deny(
    client: &mut ClientConn,
    user: &[u8],
    using_password: bool,
) -> Result<(), ClientError> {
    let host = client.peer.ip().to_string();
    client
        .send_err(&ErrPacket::access_denied(user, &host, using_password))
        .await?;
    Ok(())
}
