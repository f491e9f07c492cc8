"""Pennsylvania statutes the demo charges, and the offence patterns they come in.

Titles: 18 Pa.C.S. (Crimes Code), 35 P.S. (Controlled Substance, Drug, Device and Cosmetic
Act), 75 Pa.C.S. (Vehicle Code). Grades are the usual grade of the subsection cited. The Drug
Act and the DUI statute leave some offences ungraded ("F" or "M"); openpars grades have no
ungraded value, so those carry the grade whose maximum sentence matches theirs, marked below.
"""

from __future__ import annotations

from dataclasses import dataclass

from openpars.records.enums import Grade


@dataclass(frozen=True, slots=True)
class Statute:
    """One citation with its description and grade."""

    citation: str
    description: str
    grade: Grade


# fmt: off
_TABLE: list[tuple[str, str, Grade]] = [
    ("18 § 2701(a)(1)", "Simple assault", Grade.M2),
    ("18 § 2702(a)(1)", "Aggravated assault, serious bodily injury", Grade.F1),
    ("18 § 2702(a)(4)", "Aggravated assault with a deadly weapon", Grade.F2),
    ("18 § 2705", "Recklessly endangering another person", Grade.M2),
    ("18 § 2706(a)(1)", "Terroristic threats", Grade.M1),
    ("18 § 2709(a)(1)", "Harassment, strike, shove or kick", Grade.S),
    ("18 § 2709.1", "Stalking", Grade.M1),
    ("18 § 2718(a)(1)", "Strangulation", Grade.M2),
    ("18 § 2902(a)(1)", "Unlawful restraint", Grade.M1),
    ("18 § 3304(a)(5)", "Criminal mischief, damage to property", Grade.M3),
    ("18 § 3502(a)(1)", "Burglary, overnight accommodation, person present", Grade.F1),
    ("18 § 3502(a)(4)", "Burglary, not adapted for overnight accommodation", Grade.F2),
    ("18 § 3503(a)(1)", "Criminal trespass, enter structure", Grade.F3),
    ("18 § 3701(a)(1)", "Robbery, threat of immediate serious injury", Grade.F1),
    ("18 § 3701(a)(1)(v)", "Robbery, take property from another by force", Grade.F3),
    ("18 § 3702", "Robbery of a motor vehicle", Grade.F1),
    ("18 § 3921(a)", "Theft by unlawful taking, movable property", Grade.M1),
    ("18 § 3922(a)(1)", "Theft by deception, false impression", Grade.M2),
    ("18 § 3925(a)", "Receiving stolen property", Grade.M1),
    ("18 § 3928(a)", "Unauthorized use of a motor vehicle", Grade.M2),
    ("18 § 3929(a)(1)", "Retail theft, take merchandise", Grade.M2),
    ("18 § 3934(a)", "Theft from a motor vehicle", Grade.M3),
    ("18 § 4101(a)(1)", "Forgery, alter writing of another", Grade.F2),
    ("18 § 4106(a)(1)", "Access device fraud, use of a device", Grade.F3),
    ("18 § 4304(a)(1)", "Endangering the welfare of children", Grade.M1),
    ("18 § 4914(a)", "False identification to law enforcement", Grade.M3),
    ("18 § 5104", "Resisting arrest", Grade.M2),
    ("18 § 5101", "Obstructing administration of law", Grade.M2),
    ("18 § 5503(a)(1)", "Disorderly conduct, fighting", Grade.S),
    ("18 § 5505", "Public drunkenness", Grade.S),
    ("18 § 6105(a)(1)", "Persons not to possess firearms", Grade.F2),
    ("18 § 6106(a)(1)", "Firearms not to be carried without a license", Grade.F3),
    ("18 § 6108", "Carrying firearms on public streets in Philadelphia", Grade.M1),
    ("18 § 6110.2(a)", "Possession of firearm with altered manufacturer's number", Grade.F2),
    ("18 § 907(a)", "Possessing instruments of crime", Grade.M1),
    # Ungraded under the Drug Act; graded by their maximum sentence (35 P.S. 780-113(b), (f)).
    ("35 § 780-113(a)(16)", "Knowing and intentional possession of a controlled substance",
     Grade.M3),
    ("35 § 780-113(a)(30)", "Manufacture, delivery, or possession with intent to deliver",
     Grade.F2),
    ("35 § 780-113(a)(31)", "Possession of a small amount of marijuana", Grade.M3),
    ("35 § 780-113(a)(32)", "Use or possession of drug paraphernalia", Grade.M3),
    # First-offence DUI is an ungraded misdemeanour (six months at most); M3 is the nearest.
    ("75 § 3802(a)(1)", "DUI: general impairment", Grade.M3),
    ("75 § 3802(d)(1)", "DUI: controlled substance in the blood", Grade.M3),
    ("75 § 1543(a)", "Driving while operating privilege is suspended or revoked", Grade.S),
    ("75 § 3733(a)", "Fleeing or attempting to elude a police officer", Grade.M2),
    ("75 § 3742(a)", "Accidents involving death or personal injury", Grade.F3),
]

# fmt: on

STATUTES: dict[str, Statute] = {c: Statute(c, d, g) for c, d, g in _TABLE}


@dataclass(frozen=True, slots=True)
class Offence:
    """An offence pattern: a lead charge, companion charges with their odds, who was there."""

    name: str
    weight: int
    lead: str
    extras: tuple[tuple[str, float], ...]
    victims: bool
    # How likely a witness statement is taken, when there is a victim.
    witness_odds: float
    narrative: str


# fmt: off
OFFENCES: tuple[Offence, ...] = (
    Offence(
        "drug sale", 14, "35 § 780-113(a)(30)",
        (("35 § 780-113(a)(16)", 0.9), ("35 § 780-113(a)(32)", 0.5), ("18 § 907(a)", 0.1)),
        victims=False, witness_odds=0.0,
        narrative="Officers observed the defendant engage in {n} hand-to-hand transactions "
        "at {place}; a search incident to arrest recovered packets of narcotics and cash.",
    ),
    Offence(
        "drug possession", 9, "35 § 780-113(a)(16)",
        (("35 § 780-113(a)(32)", 0.6), ("35 § 780-113(a)(31)", 0.2)),
        victims=False, witness_odds=0.0,
        narrative="During a stop at {place} the defendant was found in possession of "
        "{n} packets of a controlled substance.",
    ),
    Offence(
        "assault", 14, "18 § 2701(a)(1)",
        (("18 § 2702(a)(1)", 0.25), ("18 § 2705", 0.6), ("18 § 2709(a)(1)", 0.5),
         ("18 § 2706(a)(1)", 0.2), ("18 § 2718(a)(1)", 0.1)),
        victims=True, witness_odds=0.6,
        narrative="Complainant reports the defendant struck them {n} times during an "
        "argument at {place}; injuries observed by responding officers.",
    ),
    Offence(
        "domestic", 7, "18 § 2701(a)(1)",
        (("18 § 2718(a)(1)", 0.3), ("18 § 2706(a)(1)", 0.4), ("18 § 2709(a)(1)", 0.7),
         ("18 § 4304(a)(1)", 0.1), ("18 § 2902(a)(1)", 0.1)),
        victims=True, witness_odds=0.3,
        narrative="Police responded to a domestic disturbance at {place}; the complainant "
        "states the defendant threatened and assaulted them.",
    ),
    Offence(
        "aggravated assault", 5, "18 § 2702(a)(4)",
        (("18 § 2701(a)(1)", 0.9), ("18 § 2705", 0.8), ("18 § 907(a)", 0.7),
         ("18 § 6106(a)(1)", 0.3), ("18 § 6108", 0.3)),
        victims=True, witness_odds=0.7,
        narrative="The defendant attacked the complainant with a weapon at {place}; "
        "the complainant was transported to hospital.",
    ),
    Offence(
        "robbery", 6, "18 § 3701(a)(1)",
        (("18 § 3921(a)", 0.9), ("18 § 3925(a)", 0.4), ("18 § 2701(a)(1)", 0.5),
         ("18 § 6106(a)(1)", 0.3), ("18 § 6108", 0.3), ("18 § 907(a)", 0.5)),
        victims=True, witness_odds=0.5,
        narrative="The complainant was robbed of a phone and ${n}0 in cash at {place}; the "
        "defendant was stopped nearby matching the flash description.",
    ),
    Offence(
        "burglary", 6, "18 § 3502(a)(1)",
        (("18 § 3503(a)(1)", 0.9), ("18 § 3921(a)", 0.8), ("18 § 3925(a)", 0.6),
         ("18 § 3304(a)(5)", 0.4)),
        victims=True, witness_odds=0.4,
        narrative="The defendant forced a rear door at {place} and was found inside with "
        "property of the owner.",
    ),
    Offence(
        "retail theft", 8, "18 § 3929(a)(1)",
        (("18 § 3921(a)", 0.2), ("18 § 3925(a)", 0.3)),
        victims=True, witness_odds=0.7,
        narrative="Loss-prevention staff at a store on {place} detained the defendant "
        "with {n} concealed items.",
    ),
    Offence(
        "theft", 5, "18 § 3921(a)",
        (("18 § 3925(a)", 0.8), ("18 § 3934(a)", 0.3), ("18 § 3928(a)", 0.2)),
        victims=True, witness_odds=0.3,
        narrative="The defendant took property belonging to the complainant at {place}.",
    ),
    Offence(
        "firearm", 7, "18 § 6106(a)(1)",
        (("18 § 6108", 0.95), ("18 § 6105(a)(1)", 0.35), ("18 § 6110.2(a)", 0.1),
         ("18 § 5104", 0.1)),
        victims=False, witness_odds=0.0,
        narrative="During a vehicle investigation at {place} officers recovered a loaded "
        "handgun; the defendant has no license to carry.",
    ),
    Offence(
        "DUI", 7, "75 § 3802(a)(1)",
        (("75 § 3802(d)(1)", 0.3), ("75 § 1543(a)", 0.3), ("75 § 3733(a)", 0.05),
         ("75 § 3742(a)", 0.03)),
        victims=False, witness_odds=0.0,
        narrative="The defendant's vehicle was stopped at {place} after weaving across "
        "{n} lanes; field sobriety tests were failed.",
    ),
    Offence(
        "fraud", 3, "18 § 4101(a)(1)",
        (("18 § 4106(a)(1)", 0.6), ("18 § 3922(a)(1)", 0.6), ("18 § 4914(a)", 0.2)),
        victims=True, witness_odds=0.2,
        narrative="The defendant presented {n} forged checks at a bank branch on {place}.",
    ),
    Offence(
        "threats", 4, "18 § 2706(a)(1)",
        (("18 § 2709(a)(1)", 0.8), ("18 § 2709.1", 0.2)),
        victims=True, witness_odds=0.3,
        narrative="The defendant repeatedly threatened the complainant at {place}.",
    ),
    Offence(
        "disorderly", 4, "18 § 5503(a)(1)",
        (("18 § 5505", 0.4), ("18 § 5104", 0.3), ("18 § 5101", 0.2)),
        victims=False, witness_odds=0.0,
        narrative="The defendant was fighting in the street at {place} and refused "
        "{n} orders to disperse.",
    ),
    Offence(
        "carjacking", 1, "18 § 3702",
        (("18 § 3701(a)(1)", 0.8), ("18 § 3921(a)", 0.6), ("18 § 6106(a)(1)", 0.5),
         ("75 § 3733(a)", 0.3)),
        victims=True, witness_odds=0.5,
        narrative="The complainant was forced from a vehicle at {place}; the vehicle was "
        "recovered {n} blocks away with the defendant inside.",
    ),
)

# fmt: on

DECLINE_REASONS = (
    "insufficient evidence to establish the elements of the offence",
    "complainant declined to cooperate with the prosecution",
    "referred to the Accelerated Misdemeanor Program instead of charging",
    "search lacked probable cause; evidence would be suppressed",
    "identification of the defendant is unreliable",
)

MODIFY_REASONS = (
    "charges amended to fit the evidence in the affidavit",
    "lead charge graded down on the facts alleged",
    "duplicative charge withdrawn",
)
