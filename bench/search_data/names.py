"""Name lists of the search benchmark: a few hundred family and given names, accents included.

Family names come roughly in order of frequency; the loader weights them by rank (Zipf), so
common names make long prefix ranges and rare ones short, as in a real city.
"""

from __future__ import annotations

FAMILY = """
Rodríguez Smith Johnson Williams Brown Jones García Martínez Hernández López González Pérez
Sánchez Ramírez Torres Rivera Nguyễn Davis Miller Wilson Moore Taylor Anderson Thomas Jackson
White Harris Martin Thompson Robinson Clark Lewis Lee Walker Hall Allen Young King Wright Scott
Green Baker Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker
Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper Reed Bailey Bell Gómez
Kelly Howard Ward Cox Díaz Richardson Wood Watson Brooks Bennett Gray James Reyes Cruz Hughes
Price Myers Long Foster Sanders Ross Morales Powell Sullivan Russell Ortiz Jenkins Gutiérrez
Perry Butler Barnes Fisher Henderson Coleman Simmons Patterson Jordan Reynolds Hamilton Graham
Kim Wallace Woods Cole West Owens Marshall Jiménez Ellis Castillo Washington O'Brien McLaughlin
Gallagher Brennan Walsh McBride Kowalski Nowak Wiśniewski Wójcik Kamiński Lewandowski Zieliński
Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Köhler Rossi Russo
Ferrari Esposito Bianchi Romano Colombo Ricci DiMarco Marino Greco Bruno Gallo Conti DeLuca
Trần Lê Phạm Huỳnh Hoàng Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Ly Chen Wang Li Zhang Liu
Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo Lin Park Choi Jung Kang Cho Yoon Jang Lim Patel
Shah Singh Kumar Sharma Gupta Mehta Desai Joshi Ali Khan Hassan Hussein Mohammed Ahmed Haddad
Abboud Nasser Saleh Diallo Kamara Sesay Koroma Mensah Okafor Okeke Adeyemi Mbeki Nkemelu
Jean-Baptiste Pierre Joseph Louis Charles Dubois Lefèvre Moreau Girard Bonnet Fontaine
Ivanov Petrov Smirnov Kuznetsov Popov Sokolov Shevchenko Kovalenko Bondarenko Tkachenko
Figueroa Maldonado Meléndez Núñez Peña Colón Vázquez Álvarez Santiago Ramos Medina Aguilar
Vargas Castro Romero Herrera Mendoza Ruiz Flores Acosta Delgado Rosario Ayala Soto Guzmán
Muñoz Córdoba Ibáñez Báez Echeverría Quiñones Avilés Benítez Nieves Espinal Ocasio Pagán
Bey Gaines Muhammad Abdullah Wilkins Tucker Gibson Holmes Stone Grant Hunter Burke Dunn
O'Connor O'Neill O'Donnell McCarthy McGinley MacDonald Fitzgerald Doyle Quinn Byrne Lynch
Ødegaard Søndergaard Åberg Björk Lindqvist Nyström Ångström Öberg Çelik Yılmaz Şahin Demir
"""

GIVEN = """
Michael James John Robert David William Joseph Anthony Christopher Daniel Matthew Kevin Brian
Tyrone Marcus Jamal Andre Darnell Terrell Malik Khalif Isaiah Dontae Rasheed Quadir Naseer
Sean Patrick Kyle Ryan Thomas Edwin Wilmer Yeison Erick Javier Luis José Jesús Héctor Ramón
Juan Carlos Miguel Ángel Pedro Francisco Minh Tuấn Bảo Linh Thủy Wei Jun Mei Ji-woo Sung-min
Raj Priya Omar Ibrahim Ahmed Yusuf Mamadou Ousmane Kwame Chukwuemeka Dmitri Andriy Oleksandr
Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Nicole Ashley Megan
Tanisha Keisha Aaliyah Shanice Jasmine Danielle Monique Latoya Brianna Imani Nadirah
Kathleen Colleen Brittany Maria María Ana Rosa Carmen Yolanda Marisol Glorimar Yaritza Nilda
Yokasta Yesenia Daniela Lucía Natalia Olga Iryna Fatima Aminata Fatoumata Abena Layla Marie
Zoë Chloé Renée Noémie Inés Björn Søren Jürgen Zoltán Çağla François Hélène Agnès Léa
Deshawn Jaylen Trevon Jermaine Lamar Reginald Cedric Dwayne Curtis Lonnie Maurice Darius
Aisha Ebony Tiana Shaniqua Precious Destiny Essence Kiara Jada Nia Ayanna Zaria
"""

MIDDLE = "A B C D E F G H J K L M N P R S T W Lee Marie Ann Luis José Thi Van Jean"

STATUTES: tuple[tuple[str, str, str], ...] = (
    ("18 § 2701(a)(1)", "Simple assault", "M2"),
    ("18 § 2702(a)(1)", "Aggravated assault, serious bodily injury", "F1"),
    ("18 § 2702(a)(4)", "Aggravated assault with a deadly weapon", "F2"),
    ("18 § 2705", "Recklessly endangering another person", "M2"),
    ("18 § 2706(a)(1)", "Terroristic threats", "M1"),
    ("18 § 2709(a)(1)", "Harassment", "S"),
    ("18 § 3304(a)(5)", "Criminal mischief", "M3"),
    ("18 § 3502(a)(1)", "Burglary, person present", "F1"),
    ("18 § 3503(a)(1)", "Criminal trespass", "F3"),
    ("18 § 3701(a)(1)", "Robbery", "F1"),
    ("18 § 3921(a)", "Theft by unlawful taking", "M1"),
    ("18 § 3925(a)", "Receiving stolen property", "M1"),
    ("18 § 3929(a)(1)", "Retail theft", "M2"),
    ("18 § 5503(a)(1)", "Disorderly conduct", "S"),
    ("18 § 6105(a)(1)", "Persons not to possess firearms", "F2"),
    ("18 § 6106(a)(1)", "Firearms not to be carried without a license", "F3"),
    ("18 § 6108", "Carrying firearms on public streets in Philadelphia", "M1"),
    ("35 § 780-113(a)(16)", "Knowing possession of a controlled substance", "M3"),
    ("35 § 780-113(a)(30)", "Possession with intent to deliver", "F2"),
    ("75 § 3802(a)(1)", "DUI, general impairment", "M3"),
)

STREETS = (
    "N Broad St",
    "Germantown Ave",
    "Kensington Ave",
    "Frankford Ave",
    "S 52nd St",
    "Lancaster Ave",
    "Castor Ave",
    "Roosevelt Blvd",
    "Passyunk Ave",
    "Girard Ave",
)
BIRTHPLACES = (
    ("Philadelphia, PA", "United States"),
    ("Camden, NJ", "United States"),
    ("San Juan, PR", "United States"),
    ("Santo Domingo", "Dominican Republic"),
    ("Ho Chi Minh City", "Vietnam"),
    ("Lagos", "Nigeria"),
    ("Kyiv", "Ukraine"),
    ("Guadalajara", "Mexico"),
    ("Port-au-Prince", "Haiti"),
    ("Freetown", "Sierra Leone"),
)
