"""Synthetic people of Philadelphia: names, birthplaces, citizenship, addresses, officers.

Every name here is made up by combination; any resemblance to a real person is chance. Phone
numbers use the 555-01XX range reserved for fiction.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from openpars.records.enums import Race, Sex
from openpars.records.schemas import AliasIn, PersonIn

US = "United States"
PHILADELPHIA = "Philadelphia, PA"


@dataclass(frozen=True, slots=True)
class Origin:
    """A naming and birthplace profile; birthplaces outside the US carry their country."""

    weight: int
    family: tuple[str, ...]
    male: tuple[str, ...]
    female: tuple[str, ...]
    races: tuple[Race, ...]
    # (place, country, weight); country None means a US birthplace.
    birthplaces: tuple[tuple[str, str | None, int], ...]
    # Chance that someone born abroad is a naturalised US citizen.
    naturalised: float


# fmt: off
ORIGINS: tuple[Origin, ...] = (
    Origin(
        44,
        ("Johnson", "Williams", "Brown", "Jones", "Jackson", "Harris", "Robinson", "Thomas",
         "Davis", "Wilson", "Taylor", "Moore", "Washington", "Green", "Lewis", "Walker",
         "Coleman", "Bey", "Gaines", "Mitchell"),
        ("Tyrone", "Marcus", "Jamal", "Andre", "Darnell", "Kevin", "Anthony", "Michael",
         "Malik", "Terrell", "Khalif", "Isaiah", "Dontae", "Rasheed", "Naseer", "Quadir"),
        ("Tanisha", "Keisha", "Aaliyah", "Shanice", "Jasmine", "Danielle", "Monique",
         "Latoya", "Brianna", "Imani", "Nadirah"),
        (Race.BLACK,),
        ((PHILADELPHIA, None, 85), ("Chester, PA", None, 4), ("Camden, NJ", None, 4),
         ("Baltimore, MD", None, 3), ("New York, NY", None, 4)),
        0.0,
    ),
    Origin(
        25,
        ("Murphy", "Kelly", "McLaughlin", "Sullivan", "O'Brien", "Rossi", "DiMarco",
         "Kowalski", "Smith", "Miller", "Walsh", "Brennan", "Esposito", "Nowak", "Schmidt",
         "McBride", "Gallagher"),
        ("Sean", "Michael", "Joseph", "Brian", "Kyle", "Ryan", "Anthony", "Patrick",
         "Matthew", "Daniel", "Christopher", "Thomas"),
        ("Kathleen", "Nicole", "Ashley", "Megan", "Maria", "Jennifer", "Brittany", "Colleen"),
        (Race.WHITE,),
        ((PHILADELPHIA, None, 75), ("Upper Darby, PA", None, 8), ("Bensalem, PA", None, 6),
         ("Cherry Hill, NJ", None, 5), ("Wilmington, DE", None, 6)),
        0.0,
    ),
    Origin(
        12,
        ("Rivera", "Santiago", "Cruz", "Ortiz", "Colón", "Rodríguez", "Torres", "Vázquez",
         "Figueroa", "Maldonado", "Meléndez", "Ramos"),
        ("José", "Luis", "Ángel", "Carlos", "Jesús", "Héctor", "Edwin", "Javier", "Joel"),
        ("María", "Yesenia", "Marisol", "Carmen", "Nilda", "Glorimar", "Yaritza"),
        (Race.WHITE, Race.UNKNOWN, Race.BLACK),
        ((PHILADELPHIA, None, 60), ("San Juan, PR", None, 18), ("Ponce, PR", None, 10),
         ("Bayamón, PR", None, 8), ("Reading, PA", None, 4)),
        0.0,
    ),
    Origin(
        7,
        ("Peña", "Ramírez", "Hernández", "González", "Pérez", "Sánchez", "Álvarez", "Reyes",
         "Morales", "Castillo", "Núñez"),
        ("Juan", "Francisco", "Miguel", "Pedro", "Erick", "Yeison", "Wilmer", "Ramón"),
        ("Ana", "Rosa", "Yolanda", "Daniela", "Lucía", "Yokasta"),
        (Race.WHITE, Race.UNKNOWN),
        ((PHILADELPHIA, None, 40), ("Santo Domingo", "Dominican Republic", 22),
         ("Puebla", "Mexico", 14), ("San Pedro Sula", "Honduras", 8),
         ("Guatemala City", "Guatemala", 8), ("San Salvador", "El Salvador", 8)),
        0.4,
    ),
    Origin(
        5,
        ("Nguyễn", "Trần", "Lê", "Phạm", "Chen", "Lin", "Wang", "Kim", "Park", "Patel",
         "Shah", "Ly", "Huỳnh"),
        ("Minh", "Tuấn", "Wei", "Jun", "Raj", "Sung-min", "Kevin", "Bảo"),
        ("Linh", "Mai", "Mei", "Priya", "Ji-woo", "Thủy"),
        (Race.ASIAN,),
        ((PHILADELPHIA, None, 45), ("Ho Chi Minh City", "Vietnam", 18),
         ("Fuzhou", "China", 12), ("Seoul", "South Korea", 8), ("Ahmedabad", "India", 9),
         ("Phnom Penh", "Cambodia", 8)),
        0.55,
    ),
    Origin(
        5,
        ("Diallo", "Kamara", "Pierre", "Joseph", "Jean-Baptiste", "Koroma", "Mensah",
         "Okafor", "Campbell", "Sesay"),
        ("Mamadou", "Ibrahim", "Jean", "Kwame", "Chukwuemeka", "Dwayne", "Ousmane"),
        ("Fatoumata", "Aminata", "Marie", "Abena", "Shanique"),
        (Race.BLACK,),
        ((PHILADELPHIA, None, 35), ("Monrovia", "Liberia", 15), ("Conakry", "Guinea", 10),
         ("Port-au-Prince", "Haiti", 12), ("Kingston", "Jamaica", 12), ("Lagos", "Nigeria", 8),
         ("Freetown", "Sierra Leone", 8)),
        0.5,
    ),
    Origin(
        2,
        ("Ivanov", "Kovalenko", "Petrov", "Ali", "Hassan", "Mohammed", "Haddad", "Shevchenko"),
        ("Dmitri", "Oleksandr", "Ahmed", "Omar", "Yusuf", "Andriy"),
        ("Olga", "Fatima", "Natalia", "Layla", "Iryna"),
        (Race.WHITE,),
        ((PHILADELPHIA, None, 30), ("Kyiv", "Ukraine", 25), ("Moscow", "Russia", 10),
         ("Cairo", "Egypt", 15), ("Amman", "Jordan", 10), ("Tbilisi", "Georgia", 10)),
        0.5,
    ),
)

STREETS = (
    "N Broad St", "Kensington Ave", "Germantown Ave", "W Lehigh Ave", "Frankford Ave",
    "S 52nd St", "Woodland Ave", "N 5th St", "Castor Ave", "E Passyunk Ave", "W Allegheny Ave",
    "Lancaster Ave", "Ridge Ave", "N 22nd St", "E Cambria St", "Roosevelt Blvd",
    "Baltimore Ave", "Snyder Ave", "Cottman Ave", "W Girard Ave", "Market St", "Chestnut St",
    "N 60th St", "Wyoming Ave", "Torresdale Ave", "W Hunting Park Ave",
)
ZIPS = ("19104", "19121", "19122", "19124", "19132", "19133", "19134", "19139", "19140",
        "19143", "19145", "19146", "19148", "19149")


# fmt: on


def weighted(
    rng: random.Random, options: tuple[tuple[str, str | None, int], ...]
) -> tuple[str, str | None]:
    """Pick a (place, country) by weight."""
    place, country, _ = rng.choices(options, weights=[w for _, _, w in options])[0]
    return place, country


def street_address(rng: random.Random) -> str:
    """A Philadelphia street address."""
    return (
        f"{rng.randint(1, 69) * 100 + rng.randint(0, 99)} {rng.choice(STREETS)}, "
        f"Philadelphia, PA {rng.choice(ZIPS)}"
    )


def place(rng: random.Random) -> str:
    """Where something happened: an intersection or a block."""
    first, second = rng.sample(STREETS, 2)
    if rng.random() < 0.5:
        return f"{first} & {second}"
    return f"{rng.randint(1, 69) * 100} block of {first}"


def phone(rng: random.Random) -> str:
    """A fictional Philadelphia number (555-01XX is reserved for fiction)."""
    return f"{rng.choice(('215', '267', '445'))}-555-01{rng.randint(0, 99):02d}"


def birth_date(rng: random.Random, on: date, *, min_age: int, max_age: int) -> date:
    """A birth date making the person between min_age and max_age on ``on``."""
    age_days = rng.randint(min_age * 365 + 1, max_age * 365 + 364)
    return on - timedelta(days=age_days)


def person(
    rng: random.Random,
    *,
    on: date,
    min_age: int,
    max_age: int,
    with_ids: tuple[str | None, str | None] = (None, None),
    alias: bool = False,
) -> PersonIn:
    """A synthetic person; ``with_ids`` carries the SID and FBI number, if any."""
    origin = rng.choices(ORIGINS, weights=[o.weight for o in ORIGINS])[0]
    sex = Sex.MALE if rng.random() < 0.8 else Sex.FEMALE
    given_names = origin.male if sex is Sex.MALE else origin.female
    family = rng.choice(origin.family)
    given = rng.choice(given_names)
    middle = rng.choice(given_names) if rng.random() < 0.4 else None
    born, country = weighted(rng, origin.birthplaces)
    citizenship = US if country is None or rng.random() < origin.naturalised else country
    birthplace = born if country is None else f"{born}, {country}"
    aliases = [AliasIn(family_name=rng.choice(origin.family), given_name=given)] if alias else []
    homeless = rng.random() < 0.04
    return PersonIn(
        family_name=family,
        given_name=given,
        middle_name=middle,
        aliases=aliases,
        birth_date=birth_date(rng, on, min_age=min_age, max_age=max_age),
        sex=sex,
        race=rng.choice(origin.races),
        address="No fixed address, Philadelphia, PA" if homeless else street_address(rng),
        phone=None if homeless or rng.random() < 0.3 else phone(rng),
        place_of_birth=birthplace,
        citizenship=citizenship,
        sid=with_ids[0],
        fbi_number=with_ids[1],
    )


# fmt: off
OFFICER_FAMILY = ("Murphy", "Ramos", "Nguyen", "Kelly", "Washington", "DiNardo", "Boyd",
                  "Santos", "Greene", "Walsh", "Carter", "Lopez", "Byrne", "Fields")
OFFICER_GIVEN = ("Daniel", "Lisa", "Marcus", "Kevin", "Angela", "Steven", "Rosa", "Brian",
                 "Tamika", "Joseph", "Erin", "Luis")
# fmt: on
MAGISTRATES = (
    "Arraignment Court Magistrate Francis Bernard",
    "Arraignment Court Magistrate Sheila Okonkwo",
    "Arraignment Court Magistrate Leonard Hoffman",
    "Arraignment Court Magistrate Teresa Quiñones",
    "Arraignment Court Magistrate James Whitaker",
)
JAILS = (
    "Curran-Fromhold Correctional Facility",
    "Detention Center",
    "Philadelphia Industrial Correctional Center",
)
WOMENS_JAIL = "Riverside Correctional Facility"
JUVENILE_CENTRE = "Philadelphia Juvenile Justice Services Center"


def officers(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    """A pool of officers as (given, family, badge)."""
    pool: list[tuple[str, str, str]] = []
    badges = rng.sample(range(1000, 9999), count)
    for badge in badges:
        pool.append((rng.choice(OFFICER_GIVEN), rng.choice(OFFICER_FAMILY), str(badge)))
    return pool
