"""The objects a caption names: the 80 COCO categories and the caption words for each (no
TensorFlow). Used by the hallucination metric (:mod:`edgecap.evaluation.chair`), the runtime's
guard against objects the detector did not see (:mod:`edgecap.runtime.guidance`) and the
pseudo-tags of sentences without photos (:mod:`edgecap.data.tags`).

The word lists follow the method of Rohrbach et al. (EMNLP 2018, "Object Hallucination in Image
Captioning", its synonym list): each category's name, synonyms, hyponyms a caption writes and
plurals; two-word names matched before single words; "baby", "adult" and the like before an
animal name that animal, not a person; "teddy bear", "hot dog" and friends not the animal. They
were written for edgecap, from the COCO detector's word mapping
(``export/taggers/coco_detector.words.json``) and the words of Flickr8k and COCO captions.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable

from edgecap.runtime.vocabulary import tokenize

#: The 80 COCO categories and the caption words that name each (singular and plural).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": (
        "person", "people", "persons", "man", "men", "woman", "women", "boy", "boys", "girl", "girls",
        "child", "children", "kid", "kids", "baby", "babies", "toddler", "toddlers", "infant", "lady",
        "ladies", "guy", "guys", "gentleman", "gentlemen", "adult", "adults", "teenager", "teenagers",
        "teen", "teens", "youth", "player", "players", "skier", "skiers", "snowboarder", "snowboarders",
        "skateboarder", "skateboarders", "skater", "skaters", "surfer", "surfers", "rider", "riders",
        "biker", "bikers", "cyclist", "cyclists", "bicyclist", "bicyclists", "pitcher", "batter",
        "catcher", "umpire", "chef", "chefs", "baker", "worker", "workers", "officer",
        "officers", "policeman", "policemen", "cop", "cops", "soldier", "soldiers", "doctor", "nurse",
        "student", "students", "mother", "mom", "father", "dad", "parent", "parents", "son",
        "daughter", "brother", "sister", "grandmother", "grandfather", "family", "crowd",
        "bride", "groom", "cowboy", "cowboys", "passenger", "passengers", "pedestrian",
        "pedestrians", "driver", "drivers", "tourist", "tourists", "spectator", "spectators",
        "audience", "athlete", "athletes", "runner", "runners", "swimmer",
        "swimmers", "climber", "climbers", "dancer", "dancers", "hiker", "hikers", "jockey",
        "someone", "somebody", "male", "males", "female", "females", "friend", "friends", "team",
        "crew", "musician", "musicians", "singer", "performer", "performers", "vendor", "vendors",
        "customer", "customers", "shopper", "shoppers", "clown", "teammate", "teammates",
    ),
    "bicycle": ("bicycle", "bicycles", "bike", "bikes"),
    "car": ("car", "cars", "auto", "autos", "automobile", "automobiles", "taxi", "taxis", "suv", "sedan", "jeep"),
    "motorcycle": ("motorcycle", "motorcycles", "motorbike", "motorbikes", "motor bike", "scooter", "scooters"),
    "airplane": ("airplane", "airplanes", "plane", "planes", "jet", "jets", "aircraft", "airliner", "jetliner"),
    "bus": ("bus", "buses", "busses"),
    "train": ("train", "trains", "locomotive", "locomotives", "tram", "trams", "subway"),
    "truck": ("truck", "trucks", "lorry"),
    "boat": ("boat", "boats", "ship", "ships", "sailboat", "sailboats", "canoe", "canoes", "kayak", "kayaks", "yacht", "raft", "ferry"),
    "traffic light": ("traffic light", "traffic lights", "traffic signal", "stoplight", "stop light"),
    "fire hydrant": ("fire hydrant", "fire hydrants", "hydrant", "hydrants"),
    "stop sign": ("stop sign", "stop signs"),
    "parking meter": ("parking meter", "parking meters", "meter", "meters"),
    "bench": ("bench", "benches"),
    "bird": ("bird", "birds", "duck", "ducks", "goose", "geese", "pigeon", "pigeons", "seagull", "seagulls", "gull", "swan", "parrot", "chicken", "chickens", "owl", "eagle", "hen"),
    "cat": ("cat", "cats", "kitten", "kittens", "kitty"),
    "dog": ("dog", "dogs", "puppy", "puppies", "pup", "pups", "doggy", "poodle", "terrier", "retriever", "collie", "labrador", "beagle", "dachshund", "husky", "pitbull", "greyhound", "chihuahua", "spaniel", "shepherd"),
    "horse": ("horse", "horses", "pony", "ponies", "foal", "stallion", "mare"),
    "sheep": ("sheep", "lamb", "lambs", "ram", "rams"),
    "cow": ("cow", "cows", "cattle", "bull", "bulls", "calf", "calves", "ox", "oxen"),
    "elephant": ("elephant", "elephants"),
    "bear": ("bear", "bears"),
    "zebra": ("zebra", "zebras"),
    "giraffe": ("giraffe", "giraffes"),
    "backpack": ("backpack", "backpacks", "knapsack"),
    "umbrella": ("umbrella", "umbrellas", "parasol", "parasols"),
    "handbag": ("handbag", "handbags", "purse", "purses"),
    "tie": ("tie", "ties", "necktie", "neckties", "bow tie"),
    "suitcase": ("suitcase", "suitcases", "luggage", "luggages"),
    "frisbee": ("frisbee", "frisbees"),
    "skis": ("ski", "skis"),
    "snowboard": ("snowboard", "snowboards"),
    "sports ball": ("ball", "balls", "football", "soccer ball", "baseball", "basketball", "volleyball", "softball", "tennis ball"),
    "kite": ("kite", "kites"),
    "baseball bat": ("baseball bat", "bat", "bats"),
    "baseball glove": ("baseball glove", "glove", "gloves", "mitt", "mitts"),
    "skateboard": ("skateboard", "skateboards"),
    "surfboard": ("surfboard", "surfboards", "surf board", "longboard"),
    "tennis racket": ("tennis racket", "racket", "rackets", "racquet", "racquets"),
    "bottle": ("bottle", "bottles"),
    "wine glass": ("wine glass", "wine glasses", "wineglass"),
    "cup": ("cup", "cups", "mug", "mugs", "coffee cup"),
    "fork": ("fork", "forks"),
    "knife": ("knife", "knives"),
    "spoon": ("spoon", "spoons"),
    "bowl": ("bowl", "bowls"),
    "banana": ("banana", "bananas"),
    "apple": ("apple", "apples"),
    "sandwich": ("sandwich", "sandwiches", "burger", "burgers", "hamburger", "hamburgers"),
    "orange": ("orange", "oranges"),
    "broccoli": ("broccoli",),
    "carrot": ("carrot", "carrots"),
    "hot dog": ("hot dog", "hot dogs", "hotdog", "hotdogs"),
    "pizza": ("pizza", "pizzas"),
    "donut": ("donut", "donuts", "doughnut", "doughnuts"),
    "cake": ("cake", "cakes", "cupcake", "cupcakes", "cheesecake"),
    "chair": ("chair", "chairs", "stool", "stools", "armchair"),
    "couch": ("couch", "couches", "sofa", "sofas"),
    "potted plant": ("potted plant", "potted plants", "houseplant", "houseplants", "plant", "plants"),
    "bed": ("bed", "beds"),
    "dining table": ("table", "tables", "dining table", "desk", "desks"),
    "toilet": ("toilet", "toilets", "urinal", "urinals", "commode"),
    "tv": ("tv", "tvs", "television", "televisions"),
    "laptop": ("laptop", "laptops", "computer", "computers"),
    "mouse": ("mouse",),
    "remote": ("remote", "remotes", "controller", "controllers"),
    "keyboard": ("keyboard", "keyboards"),
    "cell phone": ("cell phone", "cell phones", "phone", "phones", "cellphone", "cellphones", "smartphone", "smartphones"),
    "microwave": ("microwave", "microwaves"),
    "oven": ("oven", "ovens", "stove", "stoves"),
    "toaster": ("toaster", "toasters"),
    "sink": ("sink", "sinks"),
    "refrigerator": ("refrigerator", "refrigerators", "fridge", "fridges"),
    "book": ("book", "books"),
    "clock": ("clock", "clocks"),
    "vase": ("vase", "vases"),
    "scissors": ("scissors",),
    "teddy bear": ("teddy bear", "teddy bears", "teddy", "teddybear"),
    "hair drier": ("hair drier", "hair dryer", "hairdryer", "blow dryer", "dryer", "drier"),
    "toothbrush": ("toothbrush", "toothbrushes"),
}  # fmt: skip

#: Two-word phrases whose first word names a COCO category but is only a modifier there
#: ("toilet paper", "bus driver"): the first word is skipped; the second counts as itself
#: ("driver": a person).
NOT_OBJECTS: frozenset[str] = frozenset(
    {
        "toilet paper", "toilet seat", "remote control", "train tracks", "train track", "train station",
        "bus stop", "bus station", "car park", "dog show", "horse race", "cow boy", "bird cage",
        "orange juice", "apple juice", "bowling ball", "bed sheet", "bus driver", "truck driver",
        "car driver", "train conductor", "cat walk", "surf shop", "ski lift", "ski slope", "ski resort",
        "ski lodge", "ski pole", "ski poles", "baseball game", "baseball field", "baseball diamond",
        "baseball player", "baseball players", "baseball cap", "baseball uniform", "football player",
        "football players", "football field", "basketball player", "basketball players", "tennis court",
        "tennis player", "tennis players", "tennis match", "soccer player", "soccer players", "soccer field",
        "soccer game", "book store", "book shelf", "clock tower", "sink counter",
    }
)  # fmt: skip

#: Words before an animal name that make it that animal, not a person ("baby elephant", "adult
#: giraffe", "mother bear"): the person word is dropped.
ANIMAL_MODIFIERS: frozenset[str] = frozenset({"baby", "adult", "mother", "young", "little"})


def _lookup() -> tuple[dict[str, str], dict[str, str]]:
    words: dict[str, str] = {}
    phrases: dict[str, str] = {}
    for category, names in SYNONYMS.items():
        for name in names:
            (phrases if " " in name else words)[name] = category
    return words, phrases


_WORDS, _PHRASES = _lookup()
#: "orange" is a colour before most nouns ("an orange shirt"): the fruit only at the caption's
#: end or before one of these words
_FRUIT_CONTEXT = frozenset({"and", "on", "in", "with", "is", "are", "sitting", "slices", "slice", "next", "or"})
_ANIMALS = frozenset({"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"})


def objects(caption: str) -> list[str]:
    """The COCO categories a caption names, in the order it names them, each once.

    Two-word names are matched first ("hot dog" is a hot dog, "teddy bear" no bear); a phrase of
    :data:`NOT_OBJECTS` names nothing; a person word right before an animal's name is the animal's
    age ("baby elephant": an elephant only); "orange" before a noun is a colour.

    Args:
        caption: any text; tokenised with :func:`edgecap.runtime.vocabulary.tokenize`.

    Returns:
        category names, keys of :data:`SYNONYMS`.
    """
    tokens = tokenize(caption)
    found: list[str] = []
    i = 0
    while i < len(tokens):
        pair = " ".join(tokens[i : i + 2]) if i + 1 < len(tokens) else ""
        if pair in NOT_OBJECTS:  # its first word is a modifier; the second may still name one
            i += 1
            continue
        if pair in _PHRASES:
            category, i = _PHRASES[pair], i + 2
        elif tokens[i] in _WORDS:
            category, i = _WORDS[tokens[i]], i + 1
            if tokens[i - 1] == "orange" and i < len(tokens) and tokens[i] not in _FRUIT_CONTEXT:
                continue  # the colour
            if (
                category == "person"
                and tokens[i - 1] in ANIMAL_MODIFIERS
                and i < len(tokens)
                and _WORDS.get(tokens[i]) in _ANIMALS
            ):
                continue  # "baby elephant": the elephant is counted at the next token
        else:
            i += 1
            continue
        if category not in found:
            found.append(category)
    return found


def reference_objects(references: Iterable[str], min_references: int = 1) -> set[str]:
    """A photo's ground-truth categories: those named by at least ``min_references`` of its
    reference captions (1, as the paper: any reference)."""
    counts = collections.Counter(c for r in references for c in set(objects(r)))
    return {c for c, n in counts.items() if n >= min_references}
