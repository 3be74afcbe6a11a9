"""Paraphrase banks: the only text the synthetic generator ever writes.

Everything here is deliberately non-explicit: grooming lines stay at the level of the
documented risk indicators (age questions, flattery, gifts, secrecy, isolation, moving to
another app, photo and meeting requests, pressure), never sexual content.

The banks are written in a small line format, parsed by :mod:`.bank`::

    == bank-name                 starts a bank; blank lines separate exchanges
    G[secrecy]: alt | alt        a line: role, indicator codes, alternatives
    C?: lol | haha               "?" marks a line that is kept half of the time
    @ask_age                     an alternative naming a shared set, expanded in place

Roles are ``G`` (groomer) and ``C`` (child) in ``grooming:*`` banks and ``A``/``B``
elsewhere. Only ``G`` lines carry indicator codes.

The shared sets (``SHARED``) are the heart of the task's difficulty: the same surface
phrasing ("how old are you?", "send me a pic", "let's meet at the park") occurs in
grooming conversations, where it is annotated, and in hard negatives (peers, dating
adults, parents, coaches, traders), where it is not. Slots such as ``{game}`` are filled
once per conversation from ``SLOTS``; their value lists are short on purpose, because
every distinct message text costs encoder time downstream.
"""

from __future__ import annotations

SLOTS: dict[str, tuple[str, ...]] = {
    "game": ("fortnite", "minecraft", "roblox", "fifa", "valorant"),
    "app": ("snap", "whatsapp", "discord", "insta", "telegram"),
    "day": ("saturday", "sunday", "friday", "tomorrow"),
    "place": ("the park", "the mall", "the station", "the cinema"),
    "item": ("bike", "phone", "jacket", "desk", "guitar"),
    "price": ("20", "35", "50", "80"),
    "time": ("4", "5", "6", "7"),
    "subject": ("maths", "science", "english", "history"),
    "sport": ("football", "basketball", "swimming", "netball"),
    "artist": ("taylor swift", "billie eilish", "drake", "olivia rodrigo"),
    "name": ("Sam", "Alex", "Jordan", "Mia", "Leo", "Ella"),
    "age_child": ("12", "13", "14", "15"),
    "age_claim": ("15", "16", "17"),
    "age_adult": ("24", "29", "33", "38"),
    "skin": ("a skin", "the battle pass", "some robux", "v-bucks"),
    "pet": ("dog", "cat", "hamster"),
    "show": ("stranger things", "wednesday", "the office", "bluey"),
}

SHARED = """
@hi = hey | hi | hello | heyy | hiya | yo
@ok = ok | okay | ok cool | sure | alright
@laugh = lol | haha | lmao | hahaha
@idk = idk | not sure | i don't know | maybe
@ask_age = how old are you? | how old r u? | what age are you? | how old are you btw? | wait how old are you?
@ask_school = what school do you go to? | which school are you at? | what year are you in? | are you still at school?
@ask_where = where do you live? | where are you from? | what part of town are you in? | do you live near the centre?
@compliment = you're really mature | you're so talented | you're really smart you know that | you look great in your pic | you have a really nice smile | you're different from other people
@offer_credit = i can send you some game credit | want me to buy you {skin}? | i can get you {skin} if you want | i'll send you credit for {game}
@parents_home = are your parents home? | is anyone else home? | are you home alone? | is your mum around?
@dont_tell = don't tell anyone ok? | keep it a secret | don't say anything yet | this stays between us | promise you won't tell
@delete = delete the chat after | delete these messages ok | clear the chat when you're done
@move_app = add me on {app} | let's talk on {app} | do you have {app}? | message me on {app} instead | what's your {app}?
@send_pic = send me a pic | can you send a pic? | send a selfie | got a pic? | send me a photo
@video = can we video call? | turn your camera on | let's facetime later | can you video chat tonight?
@meet = we should meet up | let's meet at {place} | want to meet {day}? | i can pick you up | meet me at {place} after school?
@answer_me = answer me | why are you ignoring me | reply!! | hello?? answer | you better answer | why aren't you replying
@busy = sorry was busy | sorry i was at dinner | my phone died | sorry was doing homework
@gtg = gtg | got to go | talk later | bye | night | cya tomorrow | brb
"""

GROOMING = """
== grooming:rapport
G: @hi
C: @hi | hii | who's this?
G: saw you in the {game} lobby earlier, you're good | we were on the same team in {game} | you posted that {artist} video right?
C: oh yeah hi | haha thanks | lol yeah

G: how was your day? | how was school today? | what are you up to?
C: boring | ok i guess | nothing much, homework | tired
G: same here lol | haha i feel that | school is the worst | i remember those days

G: i feel like i can talk to you about anything | you're so easy to talk to | i'm glad we started talking | you're fun to talk to
C: haha thanks | aw same | @laugh
G?: seriously, most people are boring | i mean it

G: what kind of music do you like? | do you like {artist}? | what games do you play?
C: {artist} mostly | a bit of everything | mostly {game}
G: nice taste | same!! | we should play together sometime

== grooming:personal_question
G[personal_question]: @ask_age
C: {age_child} | im {age_child} | {age_child} u? | why?
G: cool i'm {age_claim} | age is just a number anyway | oh you seem older | haha nice
C?: @ok | @laugh

G[personal_question]: @ask_school
C: year 8 | year 9 | the one near the park lol | why do you want to know?
G: just wondering | i used to go near there | cool cool

G[personal_question]: @ask_where
C: near the centre | why? | not telling lol | not far from {place}
G: just curious haha | i'm not far from there | fair enough

G[personal_question]: do you have brothers or sisters? | do you have your own room? | what time do you get home from school? | do you walk home from school?
C: one brother | yeah | around {time} | sometimes
G: nice | cool | ok good to know

G[personal_question]: do you have a lot of friends at school? | what's your real name? | when's your birthday?
C: a few | not really | why?
G: just want to know you better | i like knowing about you

== grooming:flattery
G[flattery]: @compliment
C: aw thanks | lol no | really? | haha stop
G?: i mean it | seriously | it's true

G[flattery]: you look so mature for your age | you seem way older than {age_child} | you're not like other kids your age | you're really mature for your age
C: aw thanks | lol no | really? | people say that
G?: i mean it | seriously | it's true

G[flattery]: you're so pretty in your profile pic | you're really cute | you have a great smile | you're beautiful you know
C: thanks i guess | @laugh | omg thanks | stop it

G[flattery]: you're special you know that | you're my favourite person to talk to | you're so much smarter than people my age | you get me better than anyone
C: aw | haha ok | that's nice | @laugh

== grooming:gift
G[gift]: @offer_credit
C: wait really? | omg yes | why would you do that | no it's ok
G: sure, you deserve it | yeah no problem | it's nothing, i like you

G[gift]: i can send you some money if you need it | want me to top up your phone? | i'll get you a new phone case
C: wait really? | omg yes | no it's ok
G: yeah no problem | it's nothing for me

G[gift]: i bought you {skin} | check your account, i sent you {skin} | i got you something, check {game}
C: omg thank you!! | no way | thanks so much
G?: you owe me one haha | anything for you
G?[secrecy]: just don't tell anyone i sent it | don't tell your parents i got you that

== grooming:risk_check
G[risk_check]: @parents_home
C: no they're at work | just me | my mum is downstairs | why?
G: ok good | just asking | cool, we can talk more then

G[risk_check]: who else uses this computer? | does your mum check your phone? | do your parents read your messages? | is your phone shared with anyone?
C: just me | sometimes | nah it's mine | my dad checks it sometimes
G: ok good | be careful then | cool

G[risk_check]: what time do your parents get home? | are you alone right now? | is your door locked?
C: around {time} | yeah | why
G: just asking | so we have time to talk

== grooming:secrecy
G[secrecy]: @dont_tell
C: ok | why not? | ok i won't | @ok
G: they wouldn't understand | it's just better that way | good

G[secrecy]: don't tell your parents about us | this is our little secret | your parents wouldn't get it, don't tell them | nobody needs to know we talk
C: ok | why not? | ok i won't | i don't tell them anything anyway
G?: they wouldn't understand | good

G[secrecy]: @delete
C: ok | why? | done | @ok
G?: just in case | good

== grooming:isolation
G[isolation]: your friends don't get you like i do | i'm the only one who really understands you | your parents are so unfair to you
C: yeah maybe | they're ok sometimes | i guess
G: you can always talk to me | i'll always be here for you | you don't need them

G[isolation]: you don't need them, you've got me | they're just jealous of you | forget about them, they don't care | your parents don't listen to you like i do
C: yeah | i guess | maybe you're right | idk
G?: i'm always here

== grooming:app_move
G[app_move]: @move_app
C: ok | ok added you | i don't have it | my mum doesn't let me have {app}
G: download it, it's easy | add me there | ok i'll message you there

G[app_move]: this app is weird, let's use {app} | can we talk somewhere more private? | this chat gets checked, use {app}
C: ok | sure | idk
G: it's better there | trust me

== grooming:photo_request
G[photo_request]: @send_pic
C: why | @idk | ok one sec | maybe later
G: just want to see you | i sent you mine | please, just one

G[photo_request]: send me a pic of you | i want to see what you look like now | send me one just for me
C: why | ok | maybe later | idk
G?[pressure]: come on, just one | please, don't be boring

G[photo_request]: @video
C: my parents are home | maybe | ok | not tonight
G: tomorrow then | ok later

== grooming:meeting_request
G[meeting_request]: @meet
C: idk | maybe | i'm not allowed | where?
G: it'll be fun | i'll buy you food | we can just hang out

G[meeting_request]: i could come to your town {day} | i can pick you up after school | let's meet somewhere, just us
C: idk | maybe | i'm not allowed | where?
G?[secrecy]: don't worry, no one has to know | just tell your mum you're at a friend's

== grooming:pressure
G[pressure]: @answer_me
C: @busy | stop | sorry
G[pressure]: don't make me angry | i thought you cared about me | answer me next time

G[pressure]: after everything i did for you? | you owe me | if you really liked me you would | you're being so selfish
C: sorry | it's not like that | ok ok
G?: good

G[pressure]: if you don't send it i'll tell your parents about our chats | i'll show everyone our messages | i know where your school is | you'll get in trouble if you don't answer
C: please don't | ok ok | i'm scared | please stop
"""

BENIGN = """
== benign:teen_peers
A: @ask_age
B: {age_child} u? | {age_child} | im {age_child}
A: same lol | nice im {age_child} | oh ur older than me

A: @ask_school
B: year 8 | year 9 | the one near {place}
A: same!! | oh my cousin goes there

A: @move_app | what's your {app}
B: @ok | sure, add me | already added you
A?: added

A: @parents_home | can i come over?
B: no they're at work, come round | yeah my mum's home | mum says ok
A: omw | cool

A: @send_pic | send me a pic of your {pet} | send a pic of your outfit for the party
B: one sec | ok | look
A: cute | omg love it | @laugh

A: @dont_tell | don't tell anyone but i like {name} | keep it a secret, we're planning {name}'s birthday
B: omg i won't | my lips are sealed | promise
A?: good

A: @meet | let's meet at {place} {day} | want to come to {place} with us {day}?
B: yes!! | what time? | i'll ask my mum
A: like {time}? | @ok

A: @answer_me | why are you ignoring me lol
B: @busy | sorry
A: lol ok

A: you're really good at {game} | you're so funny | @compliment
B: @laugh | stop it | thanks!!

== benign:adult_dating
A: @compliment | you look great in your photos | i love your profile
B: thanks! you too | haha thank you | that's sweet
A?: i mean it

A: @ask_age | how old are you btw, your profile doesn't say
B: {age_adult}, you? | {age_adult}
A: {age_adult} | nice, same ballpark

A: @ask_where | which area are you in?
B: near the centre | north side | not far from {place}
A: oh nice i'm close by

A: @move_app | can we move to {app}? this app is so slow
B: @ok | sure | good idea
A: messaged you there

A: @send_pic | send me a pic from your hike | what do you look like now? send a pic
B: one sec | ok here | haha sure
A: nice | great view

A: @video | fancy a video call before we meet?
B: sure | tomorrow works | @ok

A: @meet | dinner {day}? | drinks at {place} {day}?
B: sounds good | what time? | yes!
A: {time} ok? | see you then

A: @dont_tell | don't tell your sister yet, it's early days | keep it quiet at work for now
B: haha ok | my lips are sealed | fair

== benign:parent_child
A: don't tell dad about the surprise party | keep it a secret from your sister, it's her present | @dont_tell
B: ok i won't | my lips are sealed | i won't say anything
A: good, he'll love it | thanks love

A: i'll get you {skin} if you finish your homework | i'll top up your phone tonight | i'll send you credit for {game} if your room is tidy
B: deal!! | yesss | ok fine
A?: homework first

A: is dad home yet? | @parents_home | is your brother home?
B: not yet | yeah he's here | no
A: ok, dinner at {time}

A: @answer_me | answer your phone please | you'll be in trouble if you don't answer
B: @busy | sorry phone was on silent | sorry mum
A: just text me next time | ok

A: send me a pic when you get there | can you send a pic of the letter from school | @send_pic
B: ok | here | one sec
A: thanks

A: i'll pick you up at {time} | meet me at {place} after school | @meet
B: ok | can {name} come too? | ok see you
A: sure

A: how was school? | did you eat lunch? | how was the {subject} test?
B: fine | ok | good i think
A: proud of you | good

A: you're so grown up now | you're really mature for your age, i'm proud | @compliment
B: @laugh | mum stop | thanks

== benign:coach_tutor
A: great job today, you're really talented | you're very mature for your age, the team looks up to you | @compliment
B: thanks coach! | thank you | @laugh
A?: keep it up

A: practice moved to {day} at {time} | the {subject} lesson is moved to {day} | no practice {day}, pitch is closed
B: @ok | got it | thanks
A?: tell your parents please

A: can you send me a pic of the signed form | send me a pic of your homework | send me a photo of the consent form
B: ok | here | will do tonight
A: thanks

A: which school are you at, for the tournament form? | how old are you, for the registration? | which age group are you in?
B: year 8 | {age_child} | under 14s
A: thanks

A: we can do the {subject} lesson as a video call | @video | the lesson link is on the school app
B: @ok | ok thanks | sure
A?: see you then

A: please make sure your parents know the schedule | can your mum or dad sign the form? | i'll email your parents the details
B: ok | yes | will do

A: @meet | the bus leaves from {place} at {time}
B: ok | thanks coach | see you there

== benign:gaming_trade
A: want to trade {skin}? | i'll swap {skin} for yours | @offer_credit
B: deal | how much? | maybe
A: {price} and it's yours | fair trade

A: @move_app | add me on discord, easier to trade
B: @ok | added
A?: ok sent

A: send a pic of your inventory | screenshot the trade | @send_pic
B: one sec | here | ok
A: nice

A: @ask_age | how old are you lol you play like a pro | you're really good at {game} | are you on the team?
B: {age_child} | haha thanks | @laugh
A: gg

A: @answer_me | r u there? | you still on?
B: @busy | back | here
A: ok queue up

A: @dont_tell | keep it a secret lol, best loot spot | don't tell anyone about this glitch
B: @laugh | ok | i won't

A: @meet | want to play {day}? | jump on {game} at {time}?
B: yeah | sure | can't, homework

== benign:marketplace
A: is the {item} still available? | hi, still got the {item}? | interested in the {item}
B: yes still available | yep | yes it is
A: great

A: @send_pic | can you send more pics? | any scratches? got a pic?
B: sure one sec | here | sent
A: looks good

A: would you take {price}? | best price? | is {price} ok?
B: {price} is fine | lowest is {price} | ok deal
A: deal

A: can we meet at {place} {day}? | i can pick it up at {time} | @meet
B: works for me | ok | {day} is better
A: see you then

A: @move_app | text me on whatsapp, easier
B: @ok | sure
A?: sent

A: @ask_where | where do you live roughly, for pick up?
B: near the centre | not far from {place}
A: ok close

A: hello?? still want it? | @answer_me | are you still coming?
B: @busy | yes sorry, on my way | sorry running late
A: no worries

== benign:parent_warning
A: if anyone online asks how old you are or where you live, tell me | never tell people online your school | don't share your address online ok
B: i know mum | ok | we learned that at school
A: good

A: never send pics to people you don't know | if someone asks you for a photo, tell me | don't video call strangers
B: i know | ok i won't | mum i'm not stupid
A: i know, just checking

A: if someone asks you to keep a secret from us, that's a red flag | good secrets are surprises, bad secrets make you feel weird | nobody should tell you to delete chats
B: ok | i know | we did this in pshe
A: love you

A: if someone offers you gifts or game credit, tell me | people can pretend to be kids online | people online aren't always who they say
B: ok | i know | yeah
A: just be careful

A: don't move chats to other apps with strangers | if someone asks you to add them on {app}, check with me | never meet someone from the internet alone
B: ok i promise | yeah i know | ok
A?: thanks

A: if anyone pressures you or threatens you, you won't be in trouble, tell me | nobody should make you feel guilty for not answering | if someone says you'll get in trouble, tell me
B: ok | i will | thanks mum
A: always here for you

== benign:friends
A: how was your weekend? | what did you do {day}? | did you watch {show}?
B: good, went to {place} | not much | yes!! so good
A: nice | same lol
"""

SMALLTALK = """
== smalltalk
A: how was school? | how was the {subject} test? | did you do the {subject} homework?
B: boring | i think i failed lol | not yet | it was ok
A: same | @laugh | i can help if you want
B?: thanks

A: did you see the new {game} update? | are you playing {game} tonight? | what rank are you in {game}?
B: yeah it's so good | maybe later | gold lol
A: nice | we should play | @laugh

A: have you heard the new {artist} song? | do you like {artist}? | what are you listening to?
B: yes it's on repeat | kind of | {artist} obviously
A: same | it's so good

A: what are you doing {day}? | any plans for the weekend? | going anywhere for the holidays?
B: nothing much | seeing my cousins | just chilling
A: nice | sounds good

A: what did you have for dinner? | i'm so hungry | pizza tonight
B: pasta | same | lucky
A: yum | @laugh

A: are you watching {show}? | did you finish {show}? | what should i watch next?
B: yes so good | not yet no spoilers | try {show}
A: ok | omg ok

A: do you play {sport}? | how was {sport} practice? | did your team win?
B: yeah on {day}s | tiring | we lost lol
A: nice | unlucky

A: how's your {pet}? | i want a {pet} so bad | my {pet} is being so annoying
B: cute | @laugh | same
A: @laugh

A: i'm so tired | it's so cold today | this week is so long
B: same | ugh yes | @laugh
A?: only 2 more days

A: @laugh | that's so funny | no way
B: @laugh | i know right
"""

FRAMES = """
== open
A: @hi
B: @hi | hey! | hey whats up

A: hi how are you? | hey, you there? | hey what's up
B: good u? | not bad | here
A?: good

== close
A: @gtg
B: @gtg | ok bye | night!

A: anyway i have to go | talk tomorrow? | my mum is calling me
B: @ok | ok bye | cya
"""

ALL_BANKS: tuple[str, ...] = (GROOMING, BENIGN, SMALLTALK, FRAMES)
