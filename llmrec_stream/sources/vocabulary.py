"""Per-category word lists behind the synthetic world.

Each category gets its own brands, nouns, adjectives, materials, uses and review phrases, with
as little overlap between categories as English allows, so that a sentence encoder places one
category's titles, descriptions and comments close together and far from the others. This is
data, kept apart from the generator's logic in ``synthetic.py`` and ``writing.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CategoryVocab:
    """Word lists for one category; phrases are written to read well in any template slot."""

    name: str
    label: str
    brands: tuple[str, ...]
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    materials: tuple[str, ...]
    uses: tuple[str, ...]
    praise: tuple[str, ...]
    complaints: tuple[str, ...]
    tags: tuple[str, ...]
    price: tuple[float, float]


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split("|") if part.strip())


def _vocab(name: str, label: str, price: tuple[float, float], **fields: str) -> CategoryVocab:
    return CategoryVocab(name, label, price=price, **{k: _split(v) for k, v in fields.items()})


CATEGORIES: tuple[CategoryVocab, ...] = (
    _vocab(
        "running_shoes", "Running Shoes", (49.0, 189.0),
        brands="Stridewell|Pacefoot|Trailrun|Sprintmark|Roadglide|Velocita|Marathona|Kinetix",
        nouns="running shoe|trail runner|racing flat|marathon trainer|road running sneaker|"
        "cushioned jogging shoe|track spike",
        adjectives="lightweight|cushioned|responsive|breathable|stable|springy|grippy",
        materials="engineered mesh upper|foam midsole|carbon fiber plate|rubber outsole|"
        "knit upper",
        uses="long distance runs|marathon training|daily jogging|trail running|tempo workouts|"
        "track intervals",
        praise="the cushioning feels springy on long runs|my feet stay cool and dry for ten miles|"
        "the heel lockdown is perfect and I ran a personal best|the outsole grips wet pavement|"
        "they felt broken in from the first jog",
        complaints="the sole started peeling after fifty miles|"
        "the toe box gave me blisters on my runs|"
        "the midsole went flat within a month of jogging|the laces keep coming untied mid run",
        tags="running|jogging|marathon|footwear|trail|sneakers|athletic",
    ),
    _vocab(
        "coffee", "Coffee", (8.0, 45.0),
        brands="Roastery Hill|Bean & Barrel|Morning Crema|Highland Roasters|Espresso Lane|"
        "Kaffa Origins|Blackcup",
        nouns="whole bean coffee|ground coffee|espresso blend|single origin coffee|"
        "cold brew coffee|decaf coffee beans|dark roast coffee",
        adjectives="dark roast|medium roast|light roast|fair trade|organic|smooth|bold",
        materials="Arabica beans|Ethiopian Yirgacheffe beans|Colombian Supremo beans|"
        "Sumatra Mandheling beans|Guatemalan Antigua beans",
        uses="pour over brewing|French press|espresso machines|drip coffee makers|cold brew|"
        "morning lattes",
        praise="the aroma of the fresh roast fills the kitchen|it brews a rich cup with notes of "
        "chocolate and caramel|the espresso pulls a thick crema|smooth coffee with no bitterness "
        "even black|my morning latte has never tasted better",
        complaints="the beans tasted stale and burnt|the coffee was sour and thin even in the "
        "French press|the roast was oily and bitter|the grind was too fine for my drip machine",
        tags="coffee|espresso|beans|roast|caffeine|brew|latte",
    ),
    _vocab(
        "skincare", "Skincare", (12.0, 85.0),
        brands="Dermalux|Glowleaf|Purely Skin|Aqua Veil|Clarisse|Botanica Derm|Velvet Bloom",
        nouns="facial moisturizer|hydrating serum|gentle cleanser|night cream|sunscreen lotion|"
        "eye cream|exfoliating toner",
        adjectives="hydrating|fragrance free|non comedogenic|soothing|brightening|anti aging|"
        "hypoallergenic",
        materials="hyaluronic acid|niacinamide|vitamin C|retinol|ceramides|aloe vera|"
        "squalane oil",
        uses="dry skin|sensitive skin|acne prone skin|fine lines and wrinkles|daily sun "
        "protection|dark spots",
        praise="my skin feels soft and hydrated all day|it cleared my breakouts in two weeks|"
        "my complexion looks brighter and more even|it absorbs quickly without a greasy film|"
        "no redness or irritation on my sensitive face",
        complaints="it made my face break out in pimples|the cream left a greasy film on my "
        "skin|it stung and caused redness around my eyes|my skin felt tight and flaky after "
        "using it",
        tags="skincare|beauty|moisturizer|serum|face|cosmetics|dermatology",
    ),
    _vocab(
        "scifi_books", "Science Fiction Books", (7.0, 35.0),
        brands="Nebula Press|Starward Books|Orbit House|Event Horizon Publishing|Quasar Editions|"
        "Andromeda Imprint",
        nouns="space opera novel|science fiction paperback|cyberpunk thriller|time travel "
        "novel|hardcover sci-fi epic|first contact novel|dystopian novel",
        adjectives="award winning|gripping|mind bending|epic|thought provoking|bestselling|"
        "visionary",
        materials="paperback edition|hardcover edition|illustrated edition|collector's edition",
        uses="fans of space opera|readers who love hard science fiction|book clubs|long flights "
        "and commutes|fans of alien worlds and starships",
        praise="the worldbuilding and alien civilizations are stunning|I could not put it down "
        "until the last chapter|the starship battles and plot twists are brilliant|the author "
        "makes the physics of faster than light travel believable|the characters and the "
        "galactic empire stay with you",
        complaints="the plot dragged and the ending was rushed|the characters were flat and the "
        "dialogue clunky|too much technobabble and not enough story|the sequel hook ruined the "
        "final chapter",
        tags="books|science fiction|novel|space|reading|fiction|dystopia",
    ),
    _vocab(
        "camping_gear", "Camping Gear", (19.0, 349.0),
        brands="Summit Trek|Wildpine|Basecamp Co|Ridgeline Outdoors|Northfork|Canyon Trail|"
        "Alpenglow",
        nouns="backpacking tent|sleeping bag|camping stove|trekking pole set|hiking backpack|"
        "camp lantern|inflatable sleeping pad",
        adjectives="ultralight|waterproof|four season|packable|insulated|weatherproof|rugged",
        materials="ripstop nylon|aluminum poles|down insulation|silnylon fly|titanium frame|"
        "polyester shell",
        uses="backcountry camping|thru hiking|car camping|winter mountaineering|weekend "
        "backpacking trips|campsite cooking",
        praise="the tent stayed dry through a night of heavy rain in the mountains|it packs "
        "small and light in my backpack|kept me warm at freezing temperatures at the campsite|"
        "setting it up at the trailhead took five minutes|it survived a windy ridge on a "
        "week long hike",
        complaints="the tent leaked at the seams during a storm|the zipper on the sleeping bag "
        "broke on the first camping trip|the stove would not stay lit in the wind|the poles "
        "bent on the first hike",
        tags="camping|hiking|outdoors|backpacking|tent|wilderness|trail gear",
    ),
    _vocab(
        "cookware", "Kitchen Knives and Cookware", (15.0, 260.0),
        brands="Ironforge Kitchen|Chef's Edge|Culinara|Blade & Hearth|Sakura Steel|Copperpot",
        nouns="chef's knife|santoku knife|cast iron skillet|nonstick frying pan|stainless steel "
        "saucepan|Dutch oven|paring knife set",
        adjectives="razor sharp|forged|nonstick|pre seasoned|dishwasher safe|heavy gauge|"
        "induction ready",
        materials="high carbon stainless steel|Damascus steel|enameled cast iron|tri ply "
        "stainless|hard anodized aluminum|copper core",
        uses="slicing vegetables|searing steak|dicing onions|simmering sauces|braising and "
        "slow cooking|everyday home cooking",
        praise="the blade slices tomatoes paper thin and holds its edge|the skillet sears steak "
        "with a perfect crust|eggs slide right off the nonstick pan|heats evenly on my gas stove "
        "with no hot spots|the knife handle feels balanced when dicing onions",
        complaints="the knife went dull after a week of chopping|the nonstick coating flaked "
        "into my food|the pan warped on high heat|the handle of the skillet gets too hot to hold",
        tags="kitchen|cooking|knives|cookware|chef|pans|culinary",
    ),
    _vocab(
        "video_games", "Video Games", (19.0, 69.0),
        brands="Pixelforge Studios|Nightfall Games|Arcadia Interactive|Vortex Entertainment|"
        "Lumen Play|Crimson Byte",
        nouns="open world RPG|multiplayer shooter|platformer game|racing game|strategy game|"
        "survival horror game|co-op adventure game",
        adjectives="action packed|story driven|competitive|remastered|immersive|fast paced|"
        "retro",
        materials="console edition|PC digital download|deluxe edition|game of the year edition|"
        "collector's bundle",
        uses="online multiplayer|couch co-op|speedrunning|late night gaming sessions|playing "
        "with friends|completionists who hunt achievements",
        praise="the boss fights and level design are incredible|I sank eighty hours into the "
        "quests and side missions|the online matches run smooth at sixty frames per second|the "
        "controls feel tight and the graphics are gorgeous|co-op mode with friends is a blast",
        complaints="the game crashes constantly and wiped my save file|the multiplayer servers "
        "lag and matchmaking is broken|full of microtransactions and loot boxes|the campaign "
        "is short and the frame rate stutters",
        tags="gaming|video games|console|multiplayer|RPG|esports|gamer",
    ),
    _vocab(
        "gardening", "Gardening", (6.0, 120.0),
        brands="Greenthumb|Bloomfield Gardens|Rootwise|Verdant Grove|Soil & Seed|Meadowbrook",
        nouns="heirloom tomato seeds|raised garden bed|pruning shears|organic potting soil|"
        "watering can|compost bin|garden trowel",
        adjectives="organic|heirloom|rust resistant|ergonomic|drought tolerant|slow release|"
        "non GMO",
        materials="cedar wood|galvanized steel|peat free compost|bypass steel blades|"
        "recycled plastic",
        uses="vegetable gardens|flower beds|container gardening|pruning roses|starting "
        "seedlings|backyard composting",
        praise="my tomato plants are loaded with fruit this summer|the seeds sprouted in four "
        "days and the seedlings are thriving|the roses and shrubs prune with a clean cut|the "
        "raised bed grew the best vegetable harvest yet|the soil kept my herbs green and "
        "blooming",
        complaints="half the seeds never germinated|the shears rusted after one season in the "
        "garden|the potting soil was full of gnats and mold|the cedar bed split after the "
        "first winter",
        tags="gardening|garden|plants|seeds|outdoor|horticulture|vegetables",
    ),
)

#: Review words shared by every category; they carry sentiment, not topic.
POSITIVE_OPENERS = _split(
    "Really happy with this|Love it|Five stars from me|Exceeded my expectations|"
    "Highly recommend|Great purchase|Absolutely worth it"
)
NEGATIVE_OPENERS = _split(
    "Very disappointed|Would not buy again|Not worth the money|Returned it|"
    "Sadly a letdown|Do not recommend"
)
