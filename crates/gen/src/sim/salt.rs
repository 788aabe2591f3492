//! Salts of [`attr`](crate::rng::attr): each names one attribute derived
//! from an entity's key, so the same person always gets the same name,
//! place or device model.

pub(super) const A_FIRST: u64 = 1;
pub(super) const A_LAST: u64 = 2;
pub(super) const A_PLACE: u64 = 3;
pub(super) const A_PLAN: u64 = 4;
pub(super) const A_AGE: u64 = 5;
pub(super) const A_NEWSLETTER: u64 = 6;
pub(super) const A_PHONE_OS: u64 = 7;
pub(super) const A_DOMAIN: u64 = 8;
pub(super) const A_EMAIL_NO: u64 = 9;
pub(super) const A_UA: u64 = 10;
pub(super) const A_IP: u64 = 11;
pub(super) const A_MODEL: u64 = 12;
pub(super) const A_OS_VERSION: u64 = 13;
pub(super) const A_APP_VERSION: u64 = 14;
pub(super) const A_AD_TRACKING: u64 = 15;
pub(super) const A_AD_ID: u64 = 16;
pub(super) const A_DEVICE_ID: u64 = 18;
pub(super) const A_TOKEN: u64 = 20;
pub(super) const A_NETWORK: u64 = 25;
pub(super) const A_CARRIER: u64 = 26;
pub(super) const A_INDUSTRY: u64 = 30;
pub(super) const A_EMPLOYEES: u64 = 31;
pub(super) const A_COMPANY_NAME: u64 = 32;
pub(super) const A_COMPANY_SUFFIX: u64 = 33;
pub(super) const A_COMPANY_PLAN: u64 = 34;
pub(super) const A_COMPANY_SINCE: u64 = 35;
pub(super) const A_METHOD: u64 = 36;
pub(super) const A_SOURCE: u64 = 37;
pub(super) const A_BOT_IP: u64 = 38;
