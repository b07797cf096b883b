//! Checks of the identity settings and entities: `auth.jwt`,
//! `auth.issuers`, `auth.login` and `users`.

use super::Validator;
use std::collections::HashSet;

impl Validator<'_> {
    pub(super) fn identity(&mut self) {
        let a = &self.c.auth;
        if let Some(j) = &a.jwt {
            if !(60..=86_400).contains(&j.access_ttl_s) {
                self.problem("auth.jwt.access_ttl_s", "from 60 to 86400 seconds");
            }
            if j.refresh_ttl_s < j.access_ttl_s || j.refresh_ttl_s > 365 * 86_400 {
                self.problem(
                    "auth.jwt.refresh_ttl_s",
                    "at least access_ttl_s and at most 365 days",
                );
            }
            if j.kid.trim().is_empty() {
                self.problem("auth.jwt.kid", "must not be empty");
            }
            if j.issuer.trim().is_empty() {
                self.problem("auth.jwt.issuer", "must not be empty");
            }
            // Keys are read and paired when the snapshot is built.
        }
        let mut names = HashSet::new();
        for (i, s) in a.issuers.iter().enumerate() {
            let path = format!("auth.issuers[{i}]");
            if s.name.trim().is_empty() || !names.insert(s.name.as_str()) {
                self.problem(
                    format!("{path}.name"),
                    format!("{:?}: empty or used twice", s.name),
                );
            }
            if s.issuer.trim().is_empty() {
                self.problem(format!("{path}.issuer"), "the iss claim its tokens carry");
            }
            if s.audience.is_empty() || s.audience.iter().any(|a| a.trim().is_empty()) {
                self.problem(
                    format!("{path}.audience"),
                    "at least one non-empty aud value a token must name",
                );
            }
            match (&s.jwks_file, &s.jwks_url) {
                (Some(_), Some(_)) | (None, None) => {
                    self.problem(path.clone(), "give exactly one of jwks_file and jwks_url")
                }
                (None, Some(url))
                    if !(url.starts_with("https://") || url.starts_with("http://")) =>
                {
                    self.problem(format!("{path}.jwks_url"), "an http:// or https:// URL")
                }
                _ => {}
            }
            if !(10..=86_400).contains(&s.refresh_s) {
                self.problem(format!("{path}.refresh_s"), "from 10 to 86400 seconds");
            }
            if s.leeway_s > 300 {
                self.problem(format!("{path}.leeway_s"), "at most 300 seconds");
            }
            if let Some(ns) = &s.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
            if s.namespace_claim
                .as_deref()
                .is_some_and(|c| c.trim().is_empty())
            {
                self.problem(format!("{path}.namespace_claim"), "a claim name");
            }
        }
        let l = &a.login;
        if l.per_email_per_minute == 0 || l.per_address_per_minute == 0 {
            self.problem(
                "auth.login",
                "per_email_per_minute and per_address_per_minute must be at least 1",
            );
        }
        if !(1..=64).contains(&l.max_concurrent) {
            self.problem("auth.login.max_concurrent", "from 1 to 64");
        }
        let mut ids = HashSet::new();
        let mut emails = HashSet::new();
        for (i, u) in self.c.users.iter().enumerate() {
            let path = format!("users[{i}]");
            if !ids.insert(u.id) {
                self.problem(format!("{path}.id"), format!("duplicate id {}", u.id));
            }
            let email = u.email.trim().to_ascii_lowercase();
            if !email.contains('@') || !emails.insert(email) {
                self.problem(
                    format!("{path}.email"),
                    format!("{:?}: not an e-mail address, or used twice", u.email),
                );
            }
            if !crate::identity::password::is_hash(&u.password_hash) {
                self.problem(
                    format!("{path}.password_hash"),
                    "an argon2 hash (PHC string, e.g. from `sluice hash-password`)",
                );
            }
            if let Some(ns) = &u.namespace {
                self.namespace_ref(format!("{path}.namespace"), ns);
            }
        }
    }

    /// Identities configured that can never be used.
    pub(super) fn identity_warnings(&mut self) {
        let a = &self.c.auth;
        if a.jwt.is_none() && self.c.users.iter().any(|u| u.is_active) {
            self.problem(
                "users",
                "users are configured but auth.jwt is not: nobody can sign in",
            );
        }
        if !a.enabled && (a.jwt.is_some() || !a.issuers.is_empty()) {
            self.problem(
                "auth.enabled",
                "auth is off: tokens of auth.jwt and auth.issuers are never checked",
            );
        }
    }
}
