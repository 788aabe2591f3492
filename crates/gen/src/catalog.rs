//! Static reference data the simulation draws from: the shop's product
//! catalogue, site pages, app screens, browsers, phones, places, names,
//! companies and marketing campaigns.

/// Public base URL of the simulated web shop.
pub(crate) const SITE: &str = "https://www.shopwave.example";
pub(crate) const APP_NAME: &str = "ShopWave";
pub(crate) const APP_NAMESPACE_IOS: &str = "com.shopwave.ios";
pub(crate) const APP_NAMESPACE_ANDROID: &str = "com.shopwave.android";
pub(crate) const AJS_VERSION: &str = "npm:next-1.70.0";
pub(crate) const NODE_VERSION: &str = "2.1.2";

#[derive(Debug)]
pub(crate) struct Product {
    pub(crate) id: &'static str,
    pub(crate) sku: &'static str,
    pub(crate) name: &'static str,
    pub(crate) brand: &'static str,
    pub(crate) category: &'static str,
    pub(crate) slug: &'static str,
    pub(crate) price_cents: u64,
}

macro_rules! products {
    ($(($id:expr, $sku:expr, $name:expr, $brand:expr, $cat:expr, $slug:expr, $price:expr)),* $(,)?) => {
        &[$(Product { id: $id, sku: $sku, name: $name, brand: $brand, category: $cat, slug: $slug, price_cents: $price }),*]
    };
}

#[rustfmt::skip]
pub(crate) const PRODUCTS: &[Product] = products![
    ("507f1f77bcf86cd799439011", "SW-HD-001", "Aurora Wireless Headphones", "Sonique", "Audio", "aurora-wireless-headphones", 12999),
    ("507f1f77bcf86cd799439012", "SW-HD-002", "Pulse Mini Earbuds", "Sonique", "Audio", "pulse-mini-earbuds", 5999),
    ("507f1f77bcf86cd799439013", "SW-SP-010", "Boombox Go Portable Speaker", "Sonique", "Audio", "boombox-go-speaker", 8950),
    ("507f1f77bcf86cd799439014", "SW-MN-027", "27\" 4K UltraSharp Monitor", "Lumen", "Computers", "27-4k-ultrasharp-monitor", 38900),
    ("507f1f77bcf86cd799439015", "SW-KB-104", "Mechanical Keyboard (Brown Switches)", "Keyforge", "Computers", "mechanical-keyboard-brown", 10900),
    ("507f1f77bcf86cd799439016", "SW-MS-210", "Ergo Vertical Mouse", "Keyforge", "Computers", "ergo-vertical-mouse", 4499),
    ("507f1f77bcf86cd799439017", "SW-LT-340", "Featherbook Air 13", "Lumen", "Computers", "featherbook-air-13", 109900),
    ("507f1f77bcf86cd799439018", "SW-CB-501", "USB-C to USB-C Cable 2m", "Linkwell", "Accessories", "usb-c-cable-2m", 1299),
    ("507f1f77bcf86cd799439019", "SW-CH-502", "65W GaN Charger", "Linkwell", "Accessories", "65w-gan-charger", 3999),
    ("507f1f77bcf86cd79943901a", "SW-PB-503", "PowerBank 20000mAh", "Linkwell", "Accessories", "powerbank-20000", 4999),
    ("507f1f77bcf86cd79943901b", "SW-CS-610", "Leather Phone Case — Tan", "Hide & Co", "Accessories", "leather-phone-case-tan", 3500),
    ("507f1f77bcf86cd79943901c", "SW-CF-700", "Café Noir Espresso Beans 1kg", "Tostado", "Kitchen", "cafe-noir-espresso-1kg", 2490),
    ("507f1f77bcf86cd79943901d", "SW-CF-701", "Pour-Over Coffee Kit", "Tostado", "Kitchen", "pour-over-coffee-kit", 4800),
    ("507f1f77bcf86cd79943901e", "SW-KT-720", "Cast Iron Skillet 26cm", "Forja", "Kitchen", "cast-iron-skillet-26", 5400),
    ("507f1f77bcf86cd79943901f", "SW-KT-721", "Chef's Knife 8\"", "Forja", "Kitchen", "chefs-knife-8", 7900),
    ("507f1f77bcf86cd799439020", "SW-KT-722", "Bamboo Cutting Board", "Forja", "Kitchen", "bamboo-cutting-board", 2199),
    ("507f1f77bcf86cd799439021", "SW-HM-800", "Linen Duvet Cover (Queen)", "Nordhem", "Home", "linen-duvet-cover-queen", 13900),
    ("507f1f77bcf86cd799439022", "SW-HM-801", "Wool Throw Blanket", "Nordhem", "Home", "wool-throw-blanket", 8900),
    ("507f1f77bcf86cd799439023", "SW-HM-802", "Ceramic Table Lamp", "Nordhem", "Home", "ceramic-table-lamp", 6450),
    ("507f1f77bcf86cd799439024", "SW-HM-803", "Scented Candle Trio", "Nordhem", "Home", "scented-candle-trio", 2900),
    ("507f1f77bcf86cd799439025", "SW-AP-900", "Merino Crew Sweater", "Fjelde", "Apparel", "merino-crew-sweater", 9800),
    ("507f1f77bcf86cd799439026", "SW-AP-901", "Everyday Organic Tee", "Fjelde", "Apparel", "everyday-organic-tee", 2400),
    ("507f1f77bcf86cd799439027", "SW-AP-902", "Trail Running Shoes", "Stride", "Apparel", "trail-running-shoes", 12500),
    ("507f1f77bcf86cd799439028", "SW-AP-903", "Rain Shell Jacket", "Fjelde", "Apparel", "rain-shell-jacket", 15900),
    ("507f1f77bcf86cd799439029", "SW-AP-904", "Wool Beanie", "Fjelde", "Apparel", "wool-beanie", 1900),
    ("507f1f77bcf86cd79943902a", "SW-FT-950", "Smart Fitness Band 3", "Stride", "Fitness", "smart-fitness-band-3", 7900),
    ("507f1f77bcf86cd79943902b", "SW-FT-951", "Yoga Mat Pro 6mm", "Stride", "Fitness", "yoga-mat-pro-6mm", 5900),
    ("507f1f77bcf86cd79943902c", "SW-FT-952", "Adjustable Dumbbells (Pair)", "Stride", "Fitness", "adjustable-dumbbells", 29900),
    ("507f1f77bcf86cd79943902d", "SW-BK-960", "The Pragmatic Kitchen (Hardcover)", "Pageturn", "Books", "the-pragmatic-kitchen", 3200),
    ("507f1f77bcf86cd79943902e", "SW-BK-961", "Dune: Deluxe Edition", "Pageturn", "Books", "dune-deluxe-edition", 4500),
    ("507f1f77bcf86cd79943902f", "SW-TY-970", "Wooden Train Set", "Kinderly", "Toys", "wooden-train-set", 6900),
    ("507f1f77bcf86cd799439030", "SW-TY-971", "1000-Piece Puzzle: Fjords", "Kinderly", "Toys", "puzzle-fjords-1000", 2299),
];

pub(crate) const PRODUCT_CATEGORIES: &[(&str, &str)] = &[
    ("Audio", "audio"),
    ("Computers", "computers"),
    ("Accessories", "accessories"),
    ("Kitchen", "kitchen"),
    ("Home", "home"),
    ("Apparel", "apparel"),
    ("Fitness", "fitness"),
    ("Books", "books"),
    ("Toys", "toys"),
];

pub(crate) const VARIANTS: &[&str] = &[
    "Black", "White", "Slate", "Sand", "Forest", "One Size", "M", "L",
];

/// Static site pages: (path, page name, category, title).
pub(crate) const PAGES: &[(&str, &str, &str, &str)] = &[
    (
        "/",
        "Home",
        "Marketing",
        "ShopWave — Everyday essentials, delivered",
    ),
    (
        "/pricing",
        "Pricing",
        "Marketing",
        "ShopWave Plus — Free shipping & early access",
    ),
    ("/about", "About", "Marketing", "About us | ShopWave"),
    ("/deals", "Deals", "Shop", "Today's deals | ShopWave"),
    (
        "/new-arrivals",
        "New Arrivals",
        "Shop",
        "New arrivals | ShopWave",
    ),
    ("/cart", "Cart", "Checkout", "Your cart | ShopWave"),
    ("/checkout", "Checkout", "Checkout", "Checkout | ShopWave"),
    (
        "/checkout/confirmation",
        "Order Confirmation",
        "Checkout",
        "Thank you for your order! | ShopWave",
    ),
    (
        "/signup",
        "Sign Up",
        "Account",
        "Create your account | ShopWave",
    ),
    ("/login", "Log In", "Account", "Log in | ShopWave"),
    ("/account", "Account", "Account", "My account | ShopWave"),
    (
        "/account/orders",
        "Orders",
        "Account",
        "My orders | ShopWave",
    ),
    ("/help", "Help Center", "Support", "Help Center | ShopWave"),
    (
        "/help/shipping-and-returns",
        "Shipping and Returns",
        "Support",
        "Shipping & returns | ShopWave",
    ),
    (
        "/stores",
        "Store Locator",
        "Marketing",
        "Find a store near you | ShopWave",
    ),
];
pub(crate) const PAGE_HOME: u8 = 0;
pub(crate) const PAGE_CART: u8 = 5;
pub(crate) const PAGE_CHECKOUT: u8 = 6;
pub(crate) const PAGE_CONFIRMATION: u8 = 7;
pub(crate) const PAGE_SIGNUP: u8 = 8;
pub(crate) const PAGE_LOGIN: u8 = 9;

/// Blog posts: (slug, title).
pub(crate) const BLOG: &[(&str, &str)] = &[
    (
        "how-to-brew-the-perfect-pour-over",
        "How to brew the perfect pour-over",
    ),
    ("10-gift-ideas-under-50", "10 gift ideas under $50"),
    (
        "choosing-a-4k-monitor",
        "Choosing a 4K monitor: what actually matters",
    ),
    (
        "spring-cleaning-checklist",
        "The only spring-cleaning checklist you need",
    ),
    ("trail-running-for-beginners", "Trail running for beginners"),
    (
        "behind-the-scenes-at-our-warehouse",
        "Behind the scenes at our warehouse",
    ),
];

/// Search queries: (query, URL-encoded query).
pub(crate) const SEARCHES: &[(&str, &str)] = &[
    ("headphones", "headphones"),
    ("wireless earbuds", "wireless+earbuds"),
    ("27\" monitor", "27%22+monitor"),
    ("usb c cable", "usb+c+cable"),
    ("espresso", "espresso"),
    ("café", "caf%C3%A9"),
    ("running shoes size 42", "running+shoes+size+42"),
    ("gift for dad", "gift+for+dad"),
    ("yoga mat", "yoga+mat"),
    ("lamp", "lamp"),
    ("merino", "merino"),
    ("kids toys 3+", "kids+toys+3%2B"),
];

/// External referrers of landing pages ("" = direct traffic).
pub(crate) const REFERRERS: &[&str] = &[
    "",
    "https://www.google.com/",
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://duckduckgo.com/",
    "https://t.co/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://www.reddit.com/r/BuyItForLife/",
    "https://news.ycombinator.com/",
];

/// Campaigns: (name, source, medium, utm query string, referrer).
#[rustfmt::skip]
pub(crate) const CAMPAIGNS: &[(&str, &str, &str, &str, &str)] = &[
    ("spring_sale_2024", "google", "cpc", "?utm_source=google&utm_medium=cpc&utm_campaign=spring_sale_2024", "https://www.google.com/"),
    ("newsletter_w02", "newsletter", "email", "?utm_source=newsletter&utm_medium=email&utm_campaign=newsletter_w02", ""),
    ("retargeting_q1", "facebook", "paid_social", "?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting_q1", "https://www.facebook.com/"),
    ("brand_awareness", "instagram", "social", "?utm_source=instagram&utm_medium=social&utm_campaign=brand_awareness", "https://www.instagram.com/"),
    ("affiliate_techblog", "techblog", "affiliate", "?utm_source=techblog&utm_medium=affiliate&utm_campaign=affiliate_techblog", "https://techblog.example/reviews/best-headphones-2024"),
    ("winter_clearance", "bing", "cpc", "?utm_source=bing&utm_medium=cpc&utm_campaign=winter_clearance", "https://www.bing.com/"),
];

/// Browser user agents.
pub(crate) const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2.1 Safari/605.1.15",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:122.0) Gecko/20100101 Firefox/122.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/121.0.6167.101 Mobile Safari/537.36",
    "Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
];

/// Crawler user agents for the bot visitors.
pub(crate) const BOT_AGENTS: &[&str] = &[
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/119.0.6045.105 Safari/537.36",
];

/// iOS devices: (model, marketing name, screen width, height, density).
pub(crate) const IOS_DEVICES: &[(&str, &str, u64, u64, u64)] = &[
    ("iPhone15,2", "iPhone 14 Pro", 393, 852, 3),
    ("iPhone15,4", "iPhone 15", 393, 852, 3),
    ("iPhone16,1", "iPhone 15 Pro", 393, 852, 3),
    ("iPhone14,7", "iPhone 14", 390, 844, 3),
    ("iPhone13,2", "iPhone 12", 390, 844, 3),
    ("iPhone12,8", "iPhone SE (2nd generation)", 375, 667, 2),
];
pub(crate) const IOS_VERSIONS: &[&str] = &["17.2.1", "17.3", "17.1.2", "16.7.4", "16.6"];

/// Android devices: (manufacturer, model, screen width, height, density).
pub(crate) const ANDROID_DEVICES: &[(&str, &str, u64, u64, u64)] = &[
    ("Google", "Pixel 8", 412, 915, 3),
    ("Google", "Pixel 7a", 412, 892, 3),
    ("samsung", "SM-S911B", 360, 780, 3),
    ("samsung", "SM-A546B", 384, 854, 3),
    ("OnePlus", "CPH2449", 412, 919, 3),
    ("Xiaomi", "2201117TG", 393, 873, 3),
];
pub(crate) const ANDROID_VERSIONS: &[&str] = &["14", "13", "12", "11"];
pub(crate) const APP_VERSIONS: &[(&str, &str)] =
    &[("4.12.1", "4121"), ("4.12.0", "4120"), ("4.11.3", "4113")];
pub(crate) const IOS_LIB_VERSION: &str = "1.5.2";
pub(crate) const ANDROID_LIB_VERSION: &str = "1.14.1";
pub(crate) const CARRIERS: &[&str] = &[
    "T-Mobile",
    "Verizon",
    "AT&T",
    "Vodafone",
    "Orange",
    "Telekom.de",
    "EE",
];

/// App screens: (screen name, category).
pub(crate) const SCREENS: &[(&str, &str)] = &[
    ("Home", "Discover"),
    ("Search", "Discover"),
    ("Category", "Discover"),
    ("Product Detail", "Shop"),
    ("Cart", "Checkout"),
    ("Checkout", "Checkout"),
    ("Order Confirmation", "Checkout"),
    ("Wishlist", "Account"),
    ("Profile", "Account"),
    ("Orders", "Account"),
    ("Settings", "Account"),
];
pub(crate) const SCREEN_PRODUCT: u8 = 3;

/// Places: (city, country, locale, timezone).
pub(crate) const PLACES: &[(&str, &str, &str, &str)] = &[
    ("New York", "US", "en-US", "America/New_York"),
    ("San Francisco", "US", "en-US", "America/Los_Angeles"),
    ("Chicago", "US", "en-US", "America/Chicago"),
    ("Austin", "US", "en-US", "America/Chicago"),
    ("Seattle", "US", "en-US", "America/Los_Angeles"),
    ("Toronto", "CA", "en-CA", "America/Toronto"),
    ("Montréal", "CA", "fr-CA", "America/Toronto"),
    ("London", "GB", "en-GB", "Europe/London"),
    ("Manchester", "GB", "en-GB", "Europe/London"),
    ("Berlin", "DE", "de-DE", "Europe/Berlin"),
    ("München", "DE", "de-DE", "Europe/Berlin"),
    ("Paris", "FR", "fr-FR", "Europe/Paris"),
    ("Madrid", "ES", "es-ES", "Europe/Madrid"),
    ("Amsterdam", "NL", "nl-NL", "Europe/Amsterdam"),
    ("Stockholm", "SE", "sv-SE", "Europe/Stockholm"),
    ("São Paulo", "BR", "pt-BR", "America/Sao_Paulo"),
    ("Sydney", "AU", "en-AU", "Australia/Sydney"),
    ("Tokyo", "JP", "ja-JP", "Asia/Tokyo"),
];

/// First names: (display, ascii for e-mail addresses).
pub(crate) const FIRST_NAMES: &[(&str, &str)] = &[
    ("Olivia", "olivia"),
    ("Liam", "liam"),
    ("Emma", "emma"),
    ("Noah", "noah"),
    ("Amelia", "amelia"),
    ("Oliver", "oliver"),
    ("Sophia", "sophia"),
    ("Elijah", "elijah"),
    ("Mia", "mia"),
    ("Lucas", "lucas"),
    ("Chloé", "chloe"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Mateo", "mateo"),
    ("Aisha", "aisha"),
    ("Yuki", "yuki"),
    ("Björn", "bjorn"),
    ("Priya", "priya"),
    ("Kwame", "kwame"),
    ("Ingrid", "ingrid"),
    ("Diego", "diego"),
    ("Hannah", "hannah"),
    ("Wei", "wei"),
    ("Fatima", "fatima"),
];

/// Last names: (display, ascii for e-mail addresses).
pub(crate) const LAST_NAMES: &[(&str, &str)] = &[
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("García", "garcia"),
    ("Müller", "mueller"),
    ("Martin", "martin"),
    ("Rossi", "rossi"),
    ("Nguyen", "nguyen"),
    ("Kim", "kim"),
    ("O'Brien", "obrien"),
    ("Silva", "silva"),
    ("Dubois", "dubois"),
    ("Andersson", "andersson"),
    ("Tanaka", "tanaka"),
    ("Patel", "patel"),
    ("Okafor", "okafor"),
    ("van der Berg", "vanderberg"),
    ("Kowalski", "kowalski"),
    ("Hernández", "hernandez"),
    ("Brown", "brown"),
    ("Cohen", "cohen"),
];

pub(crate) const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "hotmail.com",
    "proton.me",
    "gmx.de",
    "orange.fr",
];

pub(crate) const PLANS: &[&str] = &["free", "free", "free", "plus", "plus", "business"];
pub(crate) const SIGNUP_METHODS: &[&str] = &["email", "email", "google", "apple", "facebook"];

/// Company name parts and firmographics for group calls.
pub(crate) const COMPANY_PREFIX: &[&str] = &[
    "Blue Harbor",
    "Northwind",
    "Acme",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Hooli",
    "Pied Piper",
    "Vandelay",
    "Soylent",
    "Cyberdyne",
    "Tyrell",
    "Wonka",
    "Aperture",
];
pub(crate) const COMPANY_SUFFIX: &[&str] = &[
    "Labs",
    "Inc.",
    "GmbH",
    "& Co.",
    "Industries",
    "Systems",
    "Studio",
    "Logistics",
];
pub(crate) const INDUSTRIES: &[&str] = &[
    "Retail",
    "Software",
    "Hospitality",
    "Logistics",
    "Healthcare",
    "Education",
    "Media",
    "Manufacturing",
];
pub(crate) const GROUP_PLANS: &[&str] = &["team", "team", "business", "enterprise"];

/// Videos: (asset id, title, total length in seconds).
pub(crate) const VIDEOS: &[(&str, &str, u64)] = &[
    ("vid_7710", "Unboxing the Featherbook Air 13", 412),
    ("vid_7711", "Pour-over in 3 minutes", 188),
    ("vid_7712", "Trail Running Shoes — fit guide", 245),
    ("vid_7713", "Spring collection lookbook", 96),
];

/// Buttons: (id, label, location).
pub(crate) const BUTTONS: &[(&str, &str, &str)] = &[
    ("hero_cta", "Shop the sale", "home_hero"),
    ("newsletter_submit", "Subscribe", "footer"),
    ("size_guide", "Size guide", "product_detail"),
    ("add_to_wishlist", "Save for later", "product_detail"),
    ("chat_open", "Chat with us", "floating"),
    ("filter_apply", "Apply filters", "category"),
];

pub(crate) const COUPONS: &[(&str, &str, u64)] = &[
    ("SPRING15", "Spring 15% off", 15),
    ("WELCOME10", "Welcome 10% off", 10),
    ("FREESHIP", "Free shipping", 0),
];

pub(crate) const PUSH_CAMPAIGNS: &[(&str, &str)] = &[
    ("push_cart_reminder", "You left something in your cart"),
    ("push_flash_sale", "Flash sale: 24 hours only ⚡"),
    (
        "push_back_in_stock",
        "Back in stock: items on your wishlist",
    ),
];

pub(crate) const SERVER_TAGS: &[&str] = &[
    "newsletter",
    "vip",
    "b2b",
    "returning",
    "high_intent",
    "churn_risk",
];

pub(crate) const SHIPPING_CARRIERS: &[&str] = &["UPS", "DHL", "FedEx", "USPS", "La Poste"];
pub(crate) const PAYMENT_METHODS: &[&str] = &["card", "card", "paypal", "apple_pay", "klarna"];
pub(crate) const VIDEO_QUALITIES: &[&str] = &["hd720", "hd1080", "sd480"];
