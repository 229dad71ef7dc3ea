"""A deterministic generator of news-shaped articles, for benchmarks at any size with no download.

Article `i` of seed `s` depends only on `(s, i)`, so a corpus of any size is a prefix of every larger one
and one article can be regenerated without the others. Each article has a topic, a city, three named
people with roles at organisations, a subject ("the new housing plan"), a cost figure and a date; its
sentences come from templates filled from the word lists below (a vocabulary of ~5,000 words), so that
BM25 sees topical words repeated within an article and rare names across the corpus, and the embedding
model sees ordinary news prose. The lead sentence always states the article's key facts, which is what
`questions()` asks about.

    python benchmarks/corpus.py --n 1000 --seed 0 --out articles.jsonl   # JSON Lines for `rag ingest`
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.documents import build_article
from rag.models import Article

# Ten years of dates: a published_at filter of 1-10% of the corpus is a window of ~37-365 days.
FIRST_DAY = dt.date(2015, 1, 1)
LAST_DAY = dt.date(2024, 12, 31)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _phrases(text: str) -> tuple[str, ...]:
    return tuple(" ".join(p.split()) for p in text.split(";") if p.strip())


FIRST_NAMES = _words(
    "Maria Ana Sofia Elena Laura Julia Clara Marta Irene Lucia Priya Anjali Sunita Kavya Meera Aisha Fatima "
    "Amina Zainab Leila Yasmin Noor Hana Mei Lin Yuki Akiko Sakura Min-jun Ji-woo Seo-yeon Olga Irina Natalia "
    "Svetlana Katarzyna Agnieszka Zofia Ingrid Astrid Freya Sigrid Emma Olivia Charlotte Amelia Grace Hannah "
    "Chloe Isabelle Camille Margaux Chiara Giulia Francesca Beatriz Carmen Rosa Adriana Gabriela Valentina "
    "Thandiwe Nomvula Amara Chiamaka Ngozi Wanjiru Achieng Fiona Siobhan Aoife Rachel Deborah Miriam Esther "
    "James John Robert Michael David William Thomas Daniel Matthew Andrew Peter Paul Mark Simon Richard "
    "Carlos Luis Javier Miguel Diego Alejandro Pablo Jorge Mateo Rafael Joao Pedro Tiago Marco Luca Giovanni "
    "Matteo Stefano Pierre Antoine Julien Mathieu Nicolas Hans Klaus Stefan Jurgen Lukas Jonas Lars Erik "
    "Anders Magnus Piotr Tomasz Pawel Jakub Ivan Dmitri Sergei Alexei Mikhail Roman Vladimir Oleksandr Taras "
    "Rahul Arjun Vikram Sanjay Anil Rajesh Amit Suresh Ravi Kiran Ahmed Mohammed Omar Yusuf Hassan Karim "
    "Tariq Bilal Mustafa Emre Mehmet Kemal Wei Jun Hao Chen Hiroshi Takeshi Kenji Haruto Sung-min Jae-won "
    "Kwame Kofi Chinedu Oluwaseun Tunde Sipho Thabo Jomo Baraka Kipchoge Liam Noah Oliver Jack Harry Connor "
    "Sean Declan Ciaran Ethan Samuel Benjamin Joseph Aaron Isaac Nathan"
)
LAST_NAMES = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson "
    "Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams Nelson "
    "Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy "
    "Cook Rogers Morgan Cooper Peterson Reed Bailey Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks "
    "Bennett Gray Hughes Price Sanders Myers Long Ross Foster Garcia Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Perez Sanchez Ramirez Torres Flores Rivera Gomez Diaz Morales Ortiz Castillo Romero Alvarez "
    "Ruiz Navarro Moreno Silva Santos Oliveira Souza Costa Pereira Almeida Ferreira Rossi Russo Ferrari "
    "Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti Dubois Durand Lefebvre Moreau "
    "Laurent Simon Michel Garnier Faure Rousseau Muller Schmidt Schneider Fischer Weber Meyer Wagner Becker "
    "Schulz Hoffmann Koch Richter Klein Wolf Nowak Kowalski Wisniewski Wojcik Kaminski Lewandowski Ivanov "
    "Smirnov Kuznetsov Popov Sokolov Lebedev Kozlov Novikov Morozov Petrov Volkov Shevchenko Bondarenko "
    "Kovalenko Tkachenko Kravchenko Sharma Verma Gupta Singh Kumar Patel Reddy Nair Iyer Rao Mehta Joshi "
    "Chopra Malhotra Banerjee Chatterjee Mukherjee Das Khan Ali Hussain Rahman Chaudhry Qureshi Siddiqui "
    "Haddad Khoury Mansour Nasser Saleh Yilmaz Kaya Demir Sahin Celik Ozturk Wang Li Zhang Liu Chen Yang "
    "Huang Zhao Zhou Wu Xu Sun Tanaka Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Sato Kim "
    "Lee Park Choi Jung Kang Cho Yoon Nguyen Tran Le Pham Hoang Okafor Okonkwo Adeyemi Balogun Mensah Owusu "
    "Boateng Asante Mwangi Kamau Otieno Odhiambo Njoroge Dlamini Nkosi Ndlovu Mokoena Botha "
    "Jansen Bakker Visser Smit Larsen Hansen Nielsen Johansson Lindqvist Andersson Karlsson Nilsson "
    "Berg Haugen Virtanen Korhonen Murray Byrne Walsh Doyle Kennedy Quinn Gallagher"
)
# City, country (or state): where most articles take place.
CITIES = tuple(
    tuple(pair.rsplit(", ", 1))
    for pair in _phrases(
        "Lisbon, Portugal; Porto, Portugal; Madrid, Spain; Barcelona, Spain; Valencia, Spain; Seville, Spain; Paris, "
        "France; Lyon, France; Marseille, France; Toulouse, France; Bordeaux, France; Brussels, Belgium; Antwerp, "
        "Belgium; Amsterdam, the Netherlands; Rotterdam, the Netherlands; Berlin, Germany; Hamburg, Germany; Munich, "
        "Germany; Frankfurt, Germany; Cologne, Germany; Vienna, Austria; Zurich, Switzerland; Geneva, Switzerland; "
        "Rome, Italy; Milan, Italy; Naples, Italy; Turin, Italy; Athens, Greece; Warsaw, Poland; Krakow, Poland; "
        "Prague, the Czech Republic; Budapest, Hungary; Bucharest, Romania; Sofia, Bulgaria; Belgrade, Serbia; "
        "Zagreb, Croatia; Kyiv, Ukraine; Lviv, Ukraine; Kharkiv, Ukraine; Odesa, Ukraine; Moscow, Russia; Vilnius, "
        "Lithuania; Riga, Latvia; Tallinn, Estonia; Helsinki, Finland; Stockholm, Sweden; Gothenburg, Sweden; Oslo, "
        "Norway; Bergen, Norway; Copenhagen, Denmark; Dublin, Ireland; Cork, Ireland; London, Britain; Manchester, "
        "Britain; Birmingham, Britain; Glasgow, Scotland; Edinburgh, Scotland; Cardiff, Wales; Belfast, Northern "
        "Ireland; Reykjavik, Iceland; Istanbul, Turkey; Ankara, Turkey; Cairo, Egypt; Alexandria, Egypt; Tunis, "
        "Tunisia; Algiers, Algeria; Casablanca, Morocco; Rabat, Morocco; Lagos, Nigeria; Abuja, Nigeria; Accra, "
        "Ghana; Dakar, Senegal; Abidjan, Ivory Coast; Nairobi, Kenya; Mombasa, Kenya; Kampala, Uganda; Kigali, "
        "Rwanda; Addis Ababa, Ethiopia; Dar es Salaam, Tanzania; Lusaka, Zambia; Harare, Zimbabwe; Johannesburg, "
        "South Africa; Cape Town, South Africa; Durban, South Africa; Luanda, Angola; Kinshasa, Congo; Riyadh, Saudi "
        "Arabia; Jeddah, Saudi Arabia; Dubai, the United Arab Emirates; Abu Dhabi, the United Arab Emirates; Doha, "
        "Qatar; Amman, Jordan; Beirut, Lebanon; Baghdad, Iraq; Tehran, Iran; Jerusalem, Israel; Tel Aviv, Israel; "
        "Karachi, Pakistan; Lahore, Pakistan; Islamabad, Pakistan; New Delhi, India; Mumbai, India; Bengaluru, India; "
        "Chennai, India; Kolkata, India; Hyderabad, India; Pune, India; Dhaka, Bangladesh; Colombo, Sri Lanka; "
        "Kathmandu, Nepal; Bangkok, Thailand; Hanoi, Vietnam; Ho Chi Minh City, Vietnam; Kuala Lumpur, Malaysia; "
        "Singapore, Singapore; Jakarta, Indonesia; Surabaya, Indonesia; Manila, the Philippines; Beijing, China; "
        "Shanghai, China; Shenzhen, China; Guangzhou, China; Chengdu, China; Wuhan, China; Hong Kong, China; Taipei, "
        "Taiwan; Seoul, South Korea; Busan, South Korea; Tokyo, Japan; Osaka, Japan; Kyoto, Japan; Sapporo, Japan; "
        "Sydney, Australia; Melbourne, Australia; Brisbane, Australia; Perth, Australia; Auckland, New Zealand; "
        "Wellington, New Zealand; Toronto, Canada; Montreal, Canada; Vancouver, Canada; Ottawa, Canada; Calgary, "
        "Canada; New York, New York; Chicago, Illinois; Los Angeles, California; San Francisco, California; Seattle, "
        "Washington; Boston, Massachusetts; Houston, Texas; Dallas, Texas; Austin, Texas; Miami, Florida; Atlanta, "
        "Georgia; Denver, Colorado; Phoenix, Arizona; Detroit, Michigan; Philadelphia, Pennsylvania; Pittsburgh, "
        "Pennsylvania; Washington, the United States; Mexico City, Mexico; Guadalajara, Mexico; Monterrey, Mexico; "
        "Bogota, Colombia; Medellin, Colombia; Lima, Peru; Quito, Ecuador; Santiago, Chile; Buenos Aires, Argentina; "
        "Cordoba, Argentina; Montevideo, Uruguay; Sao Paulo, Brazil; Rio de Janeiro, Brazil; Brasilia, Brazil; "
        "Caracas, Venezuela; Havana, Cuba; Kingston, Jamaica; Panama City, Panama"
    )
)
# Prefixes and suffixes of invented town, river and company names: rare words, as in real local news.
_TOWN_HEADS = _words(
    "North South East West New Old Upper Lower Ash Oak Elm Pine Cedar Maple Birch Willow Stone Iron Copper "
    "Silver Gold Salt Clay Red White Black Green Blue Fair Bright Long Broad High Mill Bridge Lake River "
    "Hazel Thorn Fern Heath Moor Glen Dun Kil Bal Pen Tre Lan Ros Carr Wick"
)
_TOWN_TAILS = _words(
    "field ford bridge ton ham worth wick burgh bury port haven dale vale wood mouth stead combe minster "
    "chester caster by thorpe ley well gate cross holm borough mere shaw"
)
_COMPANY_HEADS = _words(
    "Acme Apex Vertex Zenith Nova Orion Atlas Titan Helix Quanta Nimbus Solace Vanta Lumen Axiom Cobalt "
    "Cinder Ember Halcyon Meridian Polaris Sierra Terra Aurora Boreal Cascade Delta Ether Falcon Granite "
    "Harbor Indigo Juniper Kestrel Lattice Magnolia Northwind Onyx Pinnacle Quarry Redwood Summit Tundra "
    "Umbra Vista Wavelength Xenon Yarrow Zephyr Bluefin Brightline Clearwater Driftwood Evergreen Firestone"
)
_COMPANY_TAILS = _words(
    "Holdings Group Industries Systems Energy Logistics Pharma Capital Motors Foods Mining Airlines Telecom "
    "Networks Robotics Biotech Partners Shipping Steel Retail Labs Dynamics Analytics Semiconductors"
)
# Invented outlets, so nothing here pretends to be a real publication's reporting.
SOURCES = _phrases(
    "Harbour Daily; The Meridian Times; Northern Ledger; Capital Courier; The Evening Signal; Coastline Post; "
    "Metro Herald; The Daily Compass; Riverside Gazette; Global Wire Service; The Continental; Prairie "
    "Tribune; The Observer Review; Pacific Dispatch; Atlantic Record; The Morning Standard; Summit News; "
    "Lowland Chronicle; The Civic Journal; Frontier Bulletin; The Weekly Lantern; Eastern Mirror; Southern "
    "Beacon; City Press Agency"
)


@dataclass(frozen=True)
class Topic:
    """Word lists for one news beat: what happens, who speaks, and how it is described."""

    name: str
    subjects: tuple[str, ...]  # what an article is about: "housing plan", "rate decision"
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    verbs: tuple[str, ...]  # base form; past and third person are derived
    roles: tuple[str, ...]
    bodies: tuple[str, ...]  # organisations; "{country}", "{city}" and "{company}" are filled in
    events: tuple[str, ...]  # plural things that are counted and rise or fall


def _parse_topics(spec: str) -> tuple[Topic, ...]:
    """Read the spec below: a topic name, then `field: value` lines; deeper-indented lines continue a value."""
    topics: list[dict[str, str]] = []
    key = ""
    for line in spec.strip().splitlines():
        if not line.startswith(" "):
            topics.append({"name": line.strip()})
        elif not line.startswith("   "):
            key, _, value = line.strip().partition(":")
            topics[-1][key] = value.strip()
        else:
            topics[-1][key] += " " + line.strip()
    return tuple(
        Topic(
            name=t["name"],
            subjects=_phrases(t["subjects"]),
            nouns=_words(t["nouns"]),
            adjectives=_words(t["adjectives"]),
            verbs=_words(t["verbs"]),
            roles=_phrases(t["roles"]),
            bodies=_phrases(t["bodies"]),
            events=_words(t["events"]),
        )
        for t in topics
    )


TOPICS = _parse_topics(
    """
politics
  subjects: election law; coalition agreement; budget bill; constitutional reform; referendum plan; voting reform;
    party leadership contest; anti-corruption bill; cabinet reshuffle; parliamentary inquiry; regional
    autonomy plan; lobbying rules
  nouns: parliament lawmakers senate assembly coalition opposition cabinet minister ministry vote ballot campaign
    candidate party mandate majority minority election referendum legislation amendment constituency poll
    turnout voters debate speaker committee motion veto decree governor mayor council delegates manifesto
    platform incumbent challenger nomination
  adjectives: contested sweeping controversial bipartisan divisive landmark provisional narrow decisive fragile
    populist centrist conservative liberal progressive
  verbs: approve reject pass debate delay block amend endorse propose veto ratify announce oppose challenge
    postpone
  roles: prime minister; interior minister; opposition leader; party spokesperson; speaker of parliament; senior
    lawmaker; deputy mayor; political analyst; campaign manager; constitutional lawyer
  bodies: the {country} parliament; the {city} city council; the electoral commission; the ruling party; the
    opposition alliance; the interior ministry
  events: protests votes seats signatures petitions resignations
economy
  subjects: interest rate decision; inflation report; budget deficit plan; tax package; minimum wage increase;
    stimulus programme; debt restructuring; pension reform; currency intervention; growth forecast; spending
    review; trade agreement
  nouns: inflation prices wages economy growth recession unemployment jobs deficit debt bonds yields currency
    exchange tariffs exports imports trade consumers households spending savings mortgage rates forecast
    outlook quarter output productivity investment stimulus austerity pension taxes revenue treasury
  adjectives: sluggish robust modest sharp steady fiscal monetary annual quarterly seasonal persistent cautious
    unexpected stubborn gradual
  verbs: raise cut hold lower revise forecast tighten ease slow accelerate stabilise warn predict boost curb
  roles: finance minister; central bank governor; chief economist; treasury secretary; budget director; labour
    minister; economics professor; senior fund manager
  bodies: the {country} central bank; the finance ministry; the national statistics office; the treasury; the
    chamber of commerce; the employers' federation
  events: prices wages jobs exports imports bankruptcies
business
  subjects: merger deal; takeover bid; quarterly results; restructuring plan; share buyback; factory expansion;
    layoff programme; product recall; initial public offering; supply contract; joint venture; dividend cut
  nouns: company shares investors shareholders profit revenue earnings sales margin stock market board executives
    merger acquisition takeover stake valuation dividend factory plant workforce customers suppliers brand
    retailer startup venture capital listing analysts guidance costs orders
  adjectives: profitable lossmaking hostile lucrative ambitious struggling listed private competitive dominant global
    domestic loyal upbeat disappointing
  verbs: acquire merge sell buy expand close hire cut invest report beat miss reassure delay recall
  roles: chief executive; chief financial officer; company chairman; board member; industry analyst; union
    representative; head of investor relations; founder
  bodies: {company}; the {country} competition authority; the stock exchange; {company}'s board; the securities
    regulator; the retailers' association
  events: sales orders shares jobs stores profits
technology
  subjects: data protection law; chip plant; artificial intelligence strategy; broadband rollout; cybersecurity
    review; smartphone launch; cloud computing contract; satellite internet plan; digital identity scheme;
    software update; online safety bill; encryption standard
  nouns: software hardware chips semiconductors data privacy users platform app smartphone network broadband
    cloud servers algorithm artificial intelligence cybersecurity hackers breach encryption developers
    engineers startup patent device internet satellite bandwidth processor battery browser database outage
  adjectives: digital online wireless automated encrypted open proprietary faster cheaper vulnerable secure
    experimental cutting-edge obsolete scalable
  verbs: launch release develop hack patch upgrade deploy test ban regulate encrypt license connect store block
  roles: chief technology officer; security researcher; digital minister; software engineer; data protection
    commissioner; technology analyst; product manager; startup founder
  bodies: {company}; the data protection authority; the telecoms regulator; the national cyber agency; the digital
    ministry; {company}'s research lab
  events: users downloads breaches outages devices subscribers
science
  subjects: telescope mission; vaccine trial; genome study; particle experiment; research grant; fossil discovery;
    space launch; ocean survey; climate model; quantum computer; lunar probe; gene therapy study
  nouns: scientists researchers study experiment laboratory data sample species fossil genome cells molecule
    particle telescope orbit satellite spacecraft astronaut planet galaxy mission discovery theory evidence
    journal findings physicist biologist chemist observatory specimen microscope enzyme protein
  adjectives: peer-reviewed preliminary groundbreaking rare ancient microscopic genetic molecular experimental
    remarkable unexpected detailed reliable published novel
  verbs: discover observe measure publish sequence launch analyse confirm detect map identify replicate model
    study test
  roles: lead researcher; professor of physics; mission director; senior scientist; study co-author; laboratory
    director; research fellow; science minister
  bodies: the {city} university; the national space agency; the {country} academy of sciences; the research
    council; the institute of technology; the natural history museum
  events: samples species cases observations particles planets
health
  subjects: hospital funding plan; vaccination campaign; drug approval; waiting list target; outbreak response;
    mental health strategy; nurses' pay deal; cancer screening programme; smoking ban; health insurance
    reform; maternity services review; obesity strategy
  nouns: hospital patients doctors nurses clinic surgery vaccine vaccination virus outbreak infection disease
    cancer treatment drug medicine dose symptoms diagnosis ambulance emergency beds waiting ward pharmacy
    insurance prescriptions therapy epidemic pandemic immunity screening mortality trial care
  adjectives: chronic acute infectious contagious preventable fatal critical overstretched rural underfunded effective
    affordable elderly vulnerable mental
  verbs: treat vaccinate diagnose admit discharge prescribe screen recover spread contain approve fund recruit
    train warn
  roles: health minister; chief medical officer; hospital director; epidemiologist; head of nursing; public
    health official; general practitioner; patient advocate
  bodies: the {country} health ministry; the {city} general hospital; the medicines agency; the public health
    institute; the nurses' union; the medical association
  events: cases admissions deaths infections vaccinations operations
climate
  subjects: emissions target; flood defence scheme; carbon tax; wildfire response; drought plan; coastal protection
    project; reforestation programme; heatwave warning; plastic ban; air quality plan; biodiversity pledge;
    climate summit deal
  nouns: emissions carbon climate temperatures heatwave drought floods rainfall storm hurricane wildfire forest
    deforestation glacier sea level coast pollution air quality plastic waste recycling biodiversity
    wildlife habitat conservation species rivers wetlands reef greenhouse gases warming
  adjectives: renewable sustainable extreme severe record unprecedented coastal arid polluted endangered protected
    green toxic fragile resilient
  verbs: reduce cut protect restore plant pollute evacuate warn flood burn recycle ban pledge adapt monitor
  roles: environment minister; climate scientist; conservation officer; meteorologist; campaign director; fire
    chief; head of civil protection; ecologist
  bodies: the {country} environment agency; the weather service; the {city} fire brigade; the conservation trust;
    the climate commission; the coastal authority
  events: fires floods emissions evacuations hectares storms
sport
  subjects: championship final; transfer deal; stadium project; doping case; coaching change; world cup qualifier;
    marathon record; league title race; contract extension; olympic bid; cup semi-final; season opener
  nouns: match team players coach manager striker goalkeeper defender midfielder goal goals league season
    championship tournament final trophy title stadium fans supporters referee penalty injury transfer
    contract club squad victory defeat draw record athlete marathon sprint medal olympics
  adjectives: dramatic stunning comfortable narrow unbeaten injured veteran talented decisive disappointing historic
    thrilling dominant resilient young
  verbs: win lose beat draw score sign retire coach defend qualify train celebrate suspend appeal transfer
  roles: head coach; team captain; club president; sporting director; star striker; league commissioner; team
    doctor; former champion
  bodies: {city} FC; the national team; the football federation; the olympic committee; the anti-doping agency;
    the players' union
  events: goals points wins spectators tickets fans
culture
  subjects: film festival; museum reopening; book prize; concert tour; theatre season; heritage restoration; art
    exhibition; music award; opera premiere; literary festival; gallery acquisition; streaming deal
  nouns: film director actor actress festival museum gallery exhibition artist painting sculpture novel author
    book prize award concert album band singer orchestra opera theatre stage audience premiere heritage
    collection curator poetry documentary screenplay critics tickets
  adjectives: acclaimed celebrated experimental classical contemporary debut sold-out retrospective intimate ambitious
    poignant vibrant forgotten iconic lavish
  verbs: premiere exhibit publish perform restore award screen curate celebrate tour record direct compose stage
    acquire
  roles: festival director; museum curator; award-winning novelist; film critic; culture minister; lead singer;
    artistic director; art historian
  bodies: the {city} museum of art; the national theatre; the film academy; the {city} philharmonic; the arts
    council; the heritage foundation
  events: visitors tickets copies screenings performances paintings
justice
  subjects: corruption trial; fraud investigation; police reform; sentencing decision; extradition case; supreme
    court ruling; prison overcrowding report; appeal hearing; money laundering probe; cybercrime crackdown;
    witness protection scheme; jury verdict
  nouns: court judge jury trial verdict sentence prison police officers detectives investigation suspect
    defendant prosecutor lawyer evidence witness charges fraud corruption bribery theft robbery arrest bail
    appeal ruling testimony custody warrant indictment inquiry lawsuit settlement
  adjectives: alleged guilty innocent criminal judicial fraudulent lengthy landmark unanimous suspended unlawful
    confidential forensic high-profile organised
  verbs: arrest charge convict acquit sentence appeal investigate testify prosecute raid seize detain extradite
    rule sue
  roles: chief prosecutor; defence lawyer; police commissioner; supreme court judge; justice minister; detective
    inspector; human rights lawyer; court spokesperson
  bodies: the {country} supreme court; the {city} police; the public prosecutor's office; the anti-corruption
    agency; the bar association; the justice ministry
  events: arrests charges convictions cases raids complaints
education
  subjects: school funding formula; tuition fee rise; curriculum overhaul; teachers' strike; exam results;
    university merger; student loan reform; school meals programme; literacy campaign; scholarship scheme;
    campus expansion; school closure plan
  nouns: school schools pupils students teachers classroom curriculum exams grades university college campus
    tuition fees scholarship degree graduates lecturers professors literacy numeracy enrolment headteacher
    parents kindergarten textbooks vocational apprenticeship research dropout timetable
  adjectives: primary secondary public private academic vocational rural overcrowded selective bilingual underfunded
    inclusive compulsory gifted remote
  verbs: teach enrol graduate study fund close open strike reform test admit expand recruit train assess
  roles: education minister; university rector; head teacher; teachers' union leader; student union president;
    school inspector; education researcher; parents' representative
  bodies: the {country} education ministry; the {city} university; the teachers' union; the exams board; the
    schools inspectorate; the student union
  events: pupils students teachers graduates applications schools
transport
  subjects: high-speed rail line; airport expansion; metro extension; fuel price cap; road safety plan; port
    upgrade; bus network overhaul; rail strike; bridge repair; congestion charge; electric bus fleet;
    cycling lane scheme
  nouns: rail railway train trains station metro subway bus buses tram airport flights airline passengers port
    ships cargo freight road roads highway traffic congestion commuters tickets fares timetable delays
    cyclists bridge tunnel fleet drivers pilots
  adjectives: high-speed electric delayed crowded cheaper faster cancelled scheduled regional intercity overnight
    driverless congested reliable urban
  verbs: build extend open close delay cancel operate upgrade connect suspend reroute repair electrify fly ship
  roles: transport minister; rail operator chief; airport director; union spokesperson; city transport
    commissioner; traffic engineer; airline spokesperson; port authority chief
  bodies: the {country} transport ministry; the {city} metro authority; the national rail operator; {company}; the
    port authority; the civil aviation authority
  events: passengers flights trains delays accidents journeys
energy
  subjects: wind farm project; nuclear plant extension; gas pipeline deal; solar subsidy; power price cap; oil
    output cut; grid upgrade; coal phase-out; hydrogen strategy; energy efficiency scheme; battery storage
    plant; offshore drilling licence
  nouns: energy electricity power grid gas oil coal nuclear reactor wind turbines solar panels hydrogen pipeline
    refinery barrels fuel petrol diesel prices bills utilities supply demand blackout outage storage
    batteries emissions megawatts capacity
  adjectives: renewable nuclear offshore onshore fossil volatile reliable cheap expensive clean intermittent strategic
    domestic crude liquefied
  verbs: generate supply import export drill build shut expand subsidise ration cap store connect switch produce
  roles: energy minister; utility chief executive; grid operator spokesperson; energy analyst; nuclear safety
    inspector; oil minister; head of the energy regulator; plant manager
  bodies: {company}; the {country} energy regulator; the national grid operator; the energy ministry; the nuclear
    safety authority; the oil producers' group
  events: barrels megawatts households customers turbines outages
agriculture
  subjects: farm subsidy reform; harvest forecast; food price plan; irrigation project; fishing quota deal;
    livestock disease response; fertiliser import ban; land reform; grain export deal; pesticide
    restriction; dairy price support; rural development fund
  nouns: farmers farms crops harvest wheat maize rice grain soybeans coffee cocoa sugar cattle livestock dairy
    milk poultry fishing fishermen fertiliser pesticides irrigation drought yields land soil seeds tractors
    markets exports prices subsidies
  adjectives: rural organic bumper poor seasonal drought-hit fertile arable staple smallholder industrial local
    disease-free subsidised perishable
  verbs: harvest plant grow export import irrigate graze subsidise protest ration sow cull fish store sell
  roles: agriculture minister; farmers' union leader; agronomist; grain trader; veterinary officer; fisheries
    commissioner; food security adviser; cooperative chairman
  bodies: the {country} agriculture ministry; the farmers' union; the food safety agency; the grain board; the
    fisheries authority; the {city} commodity exchange
  events: tonnes hectares farms animals exports harvests
defence
  subjects: defence budget increase; arms deal; military exercise; troop deployment; ceasefire agreement; border
    security plan; conscription law; peace talks; missile defence system; naval patrol mission; veterans'
    support package; drone programme
  nouns: military army navy troops soldiers forces commander defence ministry weapons missiles drones tanks
    aircraft warships border ceasefire conflict war peace talks negotiations alliance security intelligence
    sanctions diplomats embassy envoy treaty refugees casualties
  adjectives: armed strategic tactical diplomatic bilateral multilateral hostile allied fragile tense neutral covert
    defensive joint humanitarian
  verbs: deploy withdraw negotiate sign attack defend patrol intercept sanction mobilise train supply evacuate
    condemn warn
  roles: defence minister; army chief of staff; foreign minister; military spokesperson; peace envoy; security
    analyst; ambassador; navy commander
  bodies: the {country} defence ministry; the foreign ministry; the armed forces; the security council; the
    peacekeeping mission; the {country} embassy
  events: troops drones missiles refugees casualties vessels
"""
)

GENERAL_NOUNS = _words(
    "week month year decade morning evening weekend statement report survey interview meeting conference "
    "briefing announcement decision proposal plan agreement deal talks figures numbers analysis review "
    "question concern criticism support pressure opposition warning promise target deadline schedule "
    "timetable funding budget cost costs price impact effect risk benefit challenge problem solution "
    "issue crisis response change increase decline rise fall record level share region area district "
    "neighbourhood community residents people public officials authorities government experts critics "
    "supporters observers reporters journalists workers families children generation future history "
    "tradition reputation confidence trust uncertainty progress priority strategy framework system "
    "process approach standard rule rules law policy programme project scheme initiative effort campaign"
)
GENERAL_ADJECTIVES = _words(
    "new major significant important key local national international regional federal public private "
    "senior former current recent previous next final first second third latest early late long short "
    "large small big growing rising falling higher lower strong weak serious clear broad detailed "
    "official independent urgent careful difficult complex simple costly expensive popular unpopular "
    "widespread limited additional initial annual"
)
GENERAL_VERBS = _words(
    "say tell warn argue suggest insist claim confirm deny admit explain describe expect hope plan "
    "promise agree refuse decide consider review discuss address criticise welcome praise question "
    "support urge call"
)
HEDGES = _phrases(
    "according to a statement; officials said; people familiar with the matter said; "
    "the report found; a spokesperson confirmed; local media reported; documents seen by reporters show; "
    "figures published on {weekday} showed; analysts said; a survey suggested"
)
WEEKDAYS = _words("Monday Tuesday Wednesday Thursday Friday Saturday Sunday")
MONTHS = _words("January February March April May June July August September October November December")
NUMBER_WORDS = _words("two three four five six seven eight nine ten eleven twelve fifteen twenty")
ORDINALS = _words("second third fourth fifth sixth seventh eighth ninth tenth")
PERIODS = _phrases(
    "first quarter; second quarter; third quarter; fourth quarter; first half of the year; "
    "past twelve months; last financial year; winter months; summer season"
)
CURRENCIES = ("$", "€", "£", "¥")
UNITS = _phrases("million; billion")
PEOPLE_GROUPS = _words(
    "residents voters workers families parents commuters businesses farmers students patients taxpayers "
    "pensioners shopkeepers landlords tenants consumers investors campaigners volunteers"
)
# past, present participle, past participle
TRENDS = tuple(
    tuple(t.split("/"))
    for t in _words(
        "rose/rising/risen fell/falling/fallen climbed/climbing/climbed dropped/dropping/dropped "
        "jumped/jumping/jumped slipped/slipping/slipped doubled/doubling/doubled surged/surging/surged "
        "declined/declining/declined"
    )
)
_IRREGULAR_PAST = dict(
    pair.split(":")
    for pair in _words(
        "say:said tell:told win:won lose:lost beat:beat draw:drew sell:sold buy:bought cut:cut hold:held "
        "build:built fly:flew grow:grew spread:spread shut:shut teach:taught strike:struck withdraw:withdrew "
        "forecast:forecast ban:banned plan:planned admit:admitted ship:shipped map:mapped patrol:patrolled "
        "transfer:transferred acquit:acquitted enrol:enrolled cancel:cancelled model:modelled cap:capped"
    )
)


def past(verb: str) -> str:
    """Simple past of a base-form verb."""
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def third_person(verb: str) -> str:
    """Third person singular present of a base-form verb."""
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


# --- templates: a {slot} is a fact of the article (_Filler.ctx) or a fresh draw (_SLOTS); `_cap` capitalises ---

TITLE_TEMPLATES = (
    "{city} to {verb} {subject_np} as {event} {trend}",
    "{p1_last} defends {subject_np} amid {adj} criticism",
    "{body1_cap} {verbs} {subject_np} worth {amount}",
    "{country_cap} {verbs} {subject_np} after {number_word} {months_word} of talks",
    "What the {subject} means for {city}",
    "{city}'s {subject} faces {adj} test in {month}",
    "{event_cap} {trend} in {city} as {subject} stalls",
    "{p1_last}: {subject} will {verb} {noun} \u201cwithin weeks\u201d",
    "{adj_cap} {subject} divides {city} {people_group}",
    "Inside the {amount} {subject} reshaping {city}",
)
LEAD_TEMPLATES = (
    "{city_cap} {verbed} {subject_np} worth {amount} on {weekday}, {p1}, the {r1} of {body1}, said, "
    "in a move that {clause_past}.",
    "{p1}, the {r1} of {body1}, said on {weekday} that {city} would {verb} {subject_np} costing {amount}, "
    "after {number_word} {months_word} of {gnoun}.",
    "{body1_cap} {verbed} {subject_np} in {city} on {weekday}, a {amount} package that {p1}, its {r1}, "
    "called \u201c{quote_short}\u201d.",
)
BODY_TEMPLATES = (
    "{p1_last} told reporters in {city} that the {subject} would {verb} the {noun} by {year_future}.",
    "\u201c{quote},\u201d {p1_last} said.",
    "\u201c{quote},\u201d said {p2}, the {r2} of {body2}.",
    "\u201c{quote},\u201d {p3_last} added. \u201c{quote_short_cap}.\u201d",
    "The {subject} is expected to cost about {amount} over {number_word} years, {hedge}.",
    "{body2_cap} {verbed} the {adj} {noun} in {month}, {hedge}.",
    "{event_cap} in {country} {trend} {pct} in the {period}, the {ordinal} {direction} since {year_past}.",
    "According to {body2}, {big} {events} were recorded in {city} last year, up from {big2} in {year_past}.",
    "Critics, including {p3}, a {r3}, argue that the {adj} {noun} will {verb} {gnoun_plural} across {country}.",
    "{p2_last} said the {noun} had {verbed} the {gnoun} and warned of {adj} {nouns} ahead.",
    "The {gadj} {gnoun} comes as {nouns} in {place} {trend} to their {level} level in {number_word} years.",
    "In {year_past}, {place} {verbed} a similar {noun}, which {clause_past}.",
    "{number_word_cap} {people_group} gathered outside {body2} on {weekday} to {gverb} the {subject}.",
    "Officials in {place} {verbed} the {noun} after {big} {events} were reported in {month}.",
    "The {noun} would {verb} the {gnoun} for {big} {people_group}, {hedge}.",
    "{p1_last}, who became {r1} in {year_past}, has faced {adj} {gnoun} over the {subject}.",
    "{company} said it would {verb} {nouns} worth {amount} in {country} over the next {number_word} years.",
    "Under the plan, {nouns} in {city} would rise by {pct} by {year_future}, {hedge}.",
    "A {gnoun} published by {body2} in {month} found that {pct} of {people_group} {gverbed} the {subject}.",
    "The {subject} follows a {adj} {gnoun} in {place}, where {nouns} {trend} sharply last {season}.",
    "{p2_last} has {gverbed} the {subject}, saying it {clause_past}.",
    "Neither {body1} nor {body2} responded to requests for comment on {weekday}.",
    "The {gnoun} is due to be {gverbed} by {body1} on {date}.",
    "Some {people_group} in {place} said they had not been consulted about the {subject}.",
    "{place_cap}, which {verbed} its own {noun} in {year_past}, has since seen {events} {trend} by {pct}.",
    "The debate over the {subject} has {gverbed} {people_group} in {city} for {number_word} {months_word}.",
    "The {noun} will be reviewed in {month} {year_future}, {p1_last} said.",
    "{body2_cap} estimated the cost at {amount}, about {pct} more than the government's figure.",
    "{p3_last} said {big} {people_group} could be affected and called for a {adj} {gnoun}.",
    "Analysts at {company} said the {noun} could {verb} the {gnoun} if {events} kept {trend_ing}.",
    "The {subject} still needs the approval of {body1}, which is expected to vote in {month}.",
    "{p1_last} rejected claims that the {subject} had been {gverbed} in a rush.",
    "Last {season}, {big} {events} were recorded across {country}, the highest figure since {year_past}.",
    "Residents of {town} said the {noun} had {verbed} their {gnoun} for {number_word} {months_word}.",
    "The {adj} {noun} was first {gverbed} by {p2}, then the {r2}, in {year_past}.",
    "{p2_last} said the {subject} was \u201c{quote_short}\u201d and urged {body1} to {verb} the {noun}.",
    "Shares in {company} {trend} {pct} on {weekday} after the announcement.",
    "The number of {events} in {city} has {trend_perfect} by {pct} since {year_past}, {hedge}.",
)
QUOTE_CLAUSES = (
    "we will not {verb} the {noun} until the {gnoun} is clear",
    "this {subject} is the best chance {city} has had in {number_word} years",
    "the {nouns} speak for themselves",
    "nobody in {city} should have to wait this long for a {adj} {noun}",
    "we have {gverbed} every {gnoun} and the answer is the same",
    "the {gnoun} is {gadj}, and the {people_group} deserve better",
    "this is about {nouns}, not about {gnoun}",
    "the {subject} will {verb} the {noun} for a generation",
    "we were never told what the {subject} would cost",
    "I have {gverbed} the {noun} with {body2} and we agree on the {gnoun}",
    "there is no plan B for the {noun}",
    "the {people_group} of {city} will judge us on the {nouns}",
)
PAST_CLAUSES = (
    "drew {adj} criticism from {people_group}",
    "was later {gverbed} by {body2}",
    "cost {amount} more than planned",
    "left {big} {people_group} without {nouns}",
    "was {gverbed} by {p3} at the time",
    "{verbed} the {noun} for {number_word} years",
    "divided {people_group} across {country}",
    "was abandoned after {number_word} {months_word}",
)
QUESTION_TEMPLATES = (
    "What did {p1} say about the {subject} in {city}?",
    "How much will the {subject} in {city} cost?",
    "Who is the {r1} of {body1} quoted on the {subject}?",
    "What did {body1} decide about the {subject} in {city}?",
    "What is {p1_last}'s position on the {subject}?",
    "Why is the {subject} in {city} controversial?",
    "When did {city} announce the {subject}?",
    "What did the {r1} say about the {subject_np_plain}?",
)


@dataclass(frozen=True)
class Person:
    """A named person with a role at an organisation."""

    name: str
    last: str
    role: str
    body: str


@dataclass(frozen=True)
class GeneratedArticle:
    """One generated article: the JSON Lines fields in `meta`, and the facts its lead states."""

    index: int
    meta: dict[str, Any]
    topic: str
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The article's explicit id."""
        return str(self.meta["id"])

    @property
    def published_at(self) -> dt.date:
        """The article's date."""
        return dt.date.fromisoformat(str(self.meta["published_at"]))

    def to_article(self) -> Article:
        """The canonical `Article`, through the same builder the JSON Lines reader uses."""
        return build_article(self.meta, origin=f"generated:{self.index}", fallback_id=None)


@dataclass(frozen=True)
class Question:
    """A question about one generated article."""

    text: str
    article_id: str
    published_at: dt.date


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(noun: str) -> str:
    if noun.endswith("s"):
        return noun
    if noun.endswith(("sh", "ch", "x", "z")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _town(rng: random.Random) -> str:
    return rng.choice(_TOWN_HEADS) + rng.choice(_TOWN_TAILS)


def _company(rng: random.Random) -> str:
    return f"{rng.choice(_COMPANY_HEADS)} {rng.choice(_COMPANY_TAILS)}"


def _amount(rng: random.Random) -> str:
    value = rng.choice((rng.randint(2, 900), round(rng.uniform(1.1, 99.9), 1)))
    return f"{rng.choice(CURRENCIES)}{value} {rng.choice(UNITS)}"


def _pct(rng: random.Random) -> str:
    value = rng.choice((rng.randint(2, 60), round(rng.uniform(0.2, 9.9), 1)))
    return f"{value} percent" if rng.random() < 0.6 else f"{value}%"


def _big(rng: random.Random) -> str:
    return f"{rng.choice((rng.randint(12, 950), rng.randint(1_000, 250_000))):,}"


def _body(template: str, country: str, city: str, company: str) -> str:
    # "the {country} central bank" reads wrong for most countries: say "the central bank of Kenya".
    if template.startswith("the {country} "):
        template = "the " + template.removeprefix("the {country} ") + " of {country}"
    return template.format(country=country, city=city, company=company)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80]


class _Filler(dict[str, str]):
    """`template.format_map(filler)`: each slot is looked up afresh (the dict itself stays empty)."""

    def __init__(self, rng: random.Random, ctx: dict[str, Any]) -> None:
        super().__init__()
        self.rng = rng
        self.ctx = ctx
        self.topic: Topic = ctx["topic"]

    def __missing__(self, key: str) -> str:
        if key.endswith("_cap"):
            return _cap(self[key.removesuffix("_cap")])
        value = self.ctx.get(key)
        return value if isinstance(value, str) else _SLOTS[key](self)

    def fill(self, template: str) -> str:
        return template.format_map(self)

    def pick(self, items: Sequence[str]) -> str:
        return items[self.rng.randrange(len(items))]


_Draw = Callable[["_Filler"], str]

# Slots drawn afresh at every occurrence. The article's own facts (people, city, subject, cost) are in ctx.
_SLOTS: dict[str, _Draw] = {
    "noun": lambda f: f.pick(f.topic.nouns),
    "nouns": lambda f: _plural(f.pick(f.topic.nouns)),
    "adj": lambda f: f.pick(f.topic.adjectives if f.rng.random() < 0.7 else GENERAL_ADJECTIVES),
    "verb": lambda f: f.pick(f.topic.verbs),
    "verbed": lambda f: past(f.pick(f.topic.verbs)),
    "verbs": lambda f: third_person(f.pick(f.topic.verbs)),
    "event": lambda f: f.pick(f.topic.events),
    "events": lambda f: f.pick(f.topic.events),
    "gnoun": lambda f: f.pick(GENERAL_NOUNS),
    "gnoun_plural": lambda f: _plural(f.pick(GENERAL_NOUNS)),
    "gadj": lambda f: f.pick(GENERAL_ADJECTIVES),
    "gverb": lambda f: f.pick(GENERAL_VERBS),
    "gverbed": lambda f: past(f.pick(GENERAL_VERBS)),
    "people_group": lambda f: f.pick(PEOPLE_GROUPS),
    "place": lambda f: f.pick(f.ctx["places"]),
    "town": lambda f: _town(f.rng),
    "company": lambda f: f.ctx["main_company"] if f.rng.random() < 0.6 else _company(f.rng),
    "trend": lambda f: f.rng.choice(TRENDS)[0],
    "trend_ing": lambda f: f.rng.choice(TRENDS)[1],
    "trend_perfect": lambda f: f.rng.choice(TRENDS)[2],
    "direction": lambda f: f.pick(_words("increase decline rise fall drop gain")),
    "level": lambda f: f.pick(_words("highest lowest strongest weakest")),
    "hedge": lambda f: f.fill(f.pick(HEDGES)),
    "quote": lambda f: ". ".join(_cap(f.fill(f.pick(QUOTE_CLAUSES))) for _ in range(f.rng.choice((1, 1, 2)))),
    "quote_short": lambda f: f.fill(f.pick(QUOTE_CLAUSES)),
    "clause_past": lambda f: f.fill(f.pick(PAST_CLAUSES)),
    "subject_np": lambda f: f"a {f.ctx['subject_adj']} {f.ctx['subject']}",
    "pct": lambda f: _pct(f.rng),
    "big": lambda f: _big(f.rng),
    "big2": lambda f: _big(f.rng),
    "number_word": lambda f: f.pick(NUMBER_WORDS),
    "months_word": lambda f: f.pick(_words("months weeks years")),
    "ordinal": lambda f: f.pick(ORDINALS),
    "period": lambda f: f.pick(PERIODS),
    "weekday": lambda f: f.pick(WEEKDAYS),
    "month": lambda f: f.pick(MONTHS),
    "date": lambda f: f"{f.pick(MONTHS)} {f.rng.randint(1, 28)}",
    "season": lambda f: f.pick(_words("year spring summer autumn winter month")),
    "year_past": lambda f: str(f.ctx["year"] - f.rng.randint(1, 25)),
    "year_future": lambda f: str(f.ctx["year"] + f.rng.randint(1, 12)),
}


def generate(index: int, seed: int = 0) -> GeneratedArticle:
    """Article `index` of the corpus for `seed`: the same inputs always give the same article."""
    # String seeds are hashed with SHA-512 by `random`, so this is stable across runs and PYTHONHASHSEED.
    rng = random.Random(f"news-corpus:{seed}:{index}")
    topic = rng.choice(TOPICS)
    city, country = rng.choice(CITIES)
    day = FIRST_DAY + dt.timedelta(days=rng.randrange((LAST_DAY - FIRST_DAY).days + 1))
    company = _company(rng)
    people = [
        Person(f"{rng.choice(FIRST_NAMES)} {last}", last, role, _body(body, country, city, company))
        for role, body, last in zip(
            rng.sample(topic.roles, 3), rng.sample(topic.bodies, 3), rng.sample(LAST_NAMES, 3), strict=True
        )
    ]
    ctx: dict[str, Any] = {
        "topic": topic,
        "city": city,
        "country": country,
        "places": [city, city, country, _town(rng), *(c for c, _ in rng.sample(CITIES, 2))],
        "main_company": company,
        "subject": rng.choice(topic.subjects),
        "subject_adj": rng.choice(topic.adjectives + GENERAL_ADJECTIVES[:12]),
        "amount": _amount(rng),  # the article's one cost figure, repeated wherever a cost is quoted
        "year": day.year,
    }
    for n, person in enumerate(people, start=1):
        ctx.update({f"p{n}": person.name, f"p{n}_last": person.last, f"r{n}": person.role, f"body{n}": person.body})
    filler = _Filler(rng, ctx)

    title = _cap(filler.fill(rng.choice(TITLE_TEMPLATES)))
    paragraphs = [filler.fill(rng.choice(LEAD_TEMPLATES))]
    templates = list(BODY_TEMPLATES)
    rng.shuffle(templates)  # walked in order, so an article repeats no template until it has used them all
    used = 0
    # 6-16 paragraphs of 1-4 sentences: ~3,000 characters and ~4 chunks, about a median news story.
    for _ in range(rng.randint(6, 16)):
        count = rng.choice((1, 2, 2, 3, 3, 4))
        paragraphs.append(" ".join(_cap(filler.fill(templates[(used + i) % len(templates)])) for i in range(count)))
        used += count
    source = rng.choice(SOURCES)
    meta = {
        "id": f"gen-{seed}-{index:07d}",
        "title": title,
        "url": f"https://{_slug(source)}.example/{day:%Y/%m/%d}/{_slug(title)}-{index}",
        "published_at": day.isoformat(),
        "source": source,
        "author": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "body": "\n\n".join(paragraphs),
    }
    facts = {k: ctx[k] for k in ("p1", "p1_last", "r1", "body1", "city", "country", "subject", "amount")}
    facts["subject_np_plain"] = f"{ctx['subject']} in {city}"
    return GeneratedArticle(index=index, meta=meta, topic=topic.name, facts=facts)


def iter_generated(n: int, seed: int = 0, start: int = 0) -> Iterator[GeneratedArticle]:
    """Articles `start` .. `start + n - 1` of the corpus for `seed`."""
    for index in range(start, start + n):
        yield generate(index, seed)


def iter_articles(n: int, seed: int = 0, start: int = 0) -> Iterator[Article]:
    """The same articles as canonical `Article`s, ready for `RagService.ingest`."""
    for generated in iter_generated(n, seed, start):
        yield generated.to_article()


def questions(articles: Sequence[GeneratedArticle], n: int, seed: int = 0) -> list[Question]:
    """`n` questions, each about the lead of one of `articles` (drawn with replacement when n > len)."""
    rng = random.Random(f"news-questions:{seed}")
    pool = list(articles)
    picked = rng.sample(pool, n) if n <= len(pool) else [rng.choice(pool) for _ in range(n)]
    return [Question(rng.choice(QUESTION_TEMPLATES).format(**a.facts), a.id, a.published_at) for a in picked]


def write_jsonl(path: Path, n: int, seed: int = 0) -> int:
    """Write `n` articles as JSON Lines (the format `rag ingest` reads); returns the bytes written."""
    written = 0
    with path.open("w", encoding="utf-8") as handle:
        for generated in iter_generated(n, seed):
            line = json.dumps(generated.meta, ensure_ascii=False) + "\n"
            handle.write(line)
            written += len(line.encode())
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write a corpus as JSON Lines."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="number of articles")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="JSON Lines file to write")
    args = parser.parse_args(argv)
    size = write_jsonl(args.out, args.n, args.seed)
    print(f"wrote {args.n} articles ({size:,} bytes) to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
