"""Word lists the demo network is generated from (invented brands, real-sounding products)."""

BRAND_HEADS = [
    "Acme", "Northwind", "Bluepeak", "Cedar", "Harbor", "Juniper", "Kestrel", "Lumen", "Maple",
    "Nimbus", "Orchard", "Pioneer", "Quarry", "Riverstone", "Summit", "Tidewater", "Umber",
    "Vantage", "Willow", "Yardley", "Zephyr", "Alder", "Brightwell", "Copper", "Driftwood",
    "Evergreen", "Foxglove", "Granite", "Hollow", "Ironwood",
]
BRAND_TAILS = ["", " Foods", " Audio", " Home", " Labs", " Outdoors", " Kitchen", " Pets",
               " Beauty", " Kids", " Sports", " Goods"]

# category path -> product nouns
CATEGORIES = {
    "Grocery > Snacks > Chips": ["Tortilla Chips", "Kettle Chips", "Veggie Crisps"],
    "Grocery > Snacks > Cookies": ["Oat Cookies", "Chocolate Chip Cookies", "Shortbread"],
    "Grocery > Beverages > Coffee": ["Ground Coffee", "Whole Bean Coffee", "Cold Brew"],
    "Grocery > Beverages > Tea": ["Green Tea", "Black Tea", "Herbal Tea"],
    "Grocery > Breakfast > Cereal": ["Granola", "Oat Cereal", "Muesli"],
    "Electronics > Audio > Headphones": ["Wireless Headphones", "Earbuds", "Studio Headphones"],
    "Electronics > Audio > Speakers": ["Bluetooth Speaker", "Soundbar", "Smart Speaker"],
    "Electronics > Accessories > Chargers": ["USB-C Charger", "Power Bank", "Charging Cable"],
    "Home > Kitchen > Cookware": ["Nonstick Skillet", "Dutch Oven", "Saucepan"],
    "Home > Kitchen > Appliances": ["Blender", "Toaster", "Electric Kettle"],
    "Home > Cleaning > Laundry": ["Laundry Detergent", "Fabric Softener", "Stain Remover"],
    "Pets > Dog > Food": ["Dry Dog Food", "Dog Treats", "Puppy Food"],
    "Pets > Cat > Litter": ["Clumping Litter", "Pine Litter", "Litter Mat"],
    "Beauty > Skin Care > Moisturizers": ["Face Moisturizer", "Night Cream", "Hand Cream"],
    "Beauty > Hair > Shampoo": ["Shampoo", "Conditioner", "Dry Shampoo"],
    "Baby > Diapering > Diapers": ["Diapers", "Baby Wipes", "Diaper Cream"],
    "Sports > Fitness > Yoga": ["Yoga Mat", "Yoga Block", "Resistance Bands"],
    "Sports > Outdoor > Camping": ["Camping Tent", "Sleeping Bag", "Headlamp"],
    "Toys > Building > Blocks": ["Building Blocks", "Magnetic Tiles", "Marble Run"],
    "Office > Paper > Notebooks": ["Spiral Notebook", "Sticky Notes", "Legal Pad"],
}
ADJECTIVES = ["Organic", "Classic", "Premium", "Everyday", "Original", "Ultra", "Lite", "Pro",
              "Family Size", "Travel", "Deluxe", "Natural", "Compact", "Max"]
VARIANTS = ["12 oz", "2-Pack", "Large", "Small", "Black", "White", "Unscented", "Vanilla",
            "Sea Salt", "Medium Roast", "500 ml", "Value Pack", "Blue", "6-Pack"]
SEGMENTS = ["new_parents", "pet_owners", "coffee_lovers", "fitness", "home_cooks", "gamers",
            "outdoor", "beauty_enthusiasts", "bargain_hunters", "loyalty_gold", "students"]
REGIONS = ["CA", "NY", "TX", "FL", "WA", "IL", "MA", "GA", "CO", "OR"]
